"""Optional py-spy profiles of a server over stretches of the run (``bench/run.py --profile``).

py-spy samples the server from outside (``--nonblocking``: it never pauses it), so the figures
of a profiled run are close to those of a plain one, but not the same: compare plain runs only.
Each stretch leaves a collapsed-stack file (open it with speedscope or flamegraph.pl) and a
summary: the functions the samples were in (self) and the ones on the stack (total).
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Frames on nearly every stack (the event loop, the CLI, uvicorn's server): they say nothing.
_PLUMBING = (
    "<module>",
    "_run_module_as_main",
    "_run_code",
    "main (livefeed/cli.py)",
    "cmd_serve",
    "serve (livefeed/serve.py)",
    "Runner.run",
    "BaseEventLoop.",
    "Handle._run",
    "asyncio_run",
    "Server.run (uvicorn",
    "Server.serve (uvicorn",
    "_with_store",
    "run (uvicorn/main.py)",
    "run (asyncio/runners.py)",
)
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


class Profiler:
    """Runs ``py-spy record`` against a PID for the length of a ``with`` block."""

    def __init__(self, py_spy: str, folder: Path, rate: int = 200) -> None:
        self.py_spy = py_spy
        self.folder = folder
        self.rate = rate
        self.summaries: dict[str, dict[str, Any]] = {}

    @contextlib.contextmanager
    def record(self, label: str, pid: int) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        out = self.folder / f"{label}.txt"
        args = [self.py_spy, "record", "--pid", str(pid), "--rate", str(self.rate)]
        args += ["--format", "raw", "--nonblocking", "--duration", "3600", "-o", str(out)]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            yield
        finally:
            proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            try:
                _, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate(timeout=10)
            if out.exists():
                self.summaries[label] = summarise(out)
            else:
                self.summaries[label] = {"error": err.decode(errors="replace")[-300:]}

    def run(self, label: str, args: list[str], cwd: Path, timeout: float) -> None:
        """Run a command under py-spy (the import CLI, say) and summarise its profile."""
        self.folder.mkdir(parents=True, exist_ok=True)
        out = self.folder / f"{label}.txt"
        record = [self.py_spy, "record", "--rate", str(self.rate), "--format", "raw"]
        done = subprocess.run(
            [*record, "-o", str(out), "--", *args], cwd=cwd, capture_output=True, timeout=timeout
        )
        if out.exists():
            self.summaries[label] = summarise(out)
        else:
            self.summaries[label] = {"error": done.stderr.decode(errors="replace")[-300:]}


def summarise(path: Path, top: int = 12) -> dict[str, Any]:
    """Self and total sample shares of the busiest functions in a collapsed-stack file."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_name(frame) for frame in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for name in set(frames):
            total[name] += count
    share = 100 / max(samples, 1)
    return {
        "file": str(path),
        "samples": samples,
        "self_pct": {k: round(v * share, 1) for k, v in own.most_common(top)},
        "livefeed_pct": {
            k: round(v * share, 1)
            for k, v in [kv for kv in total.most_common() if "(livefeed/" in kv[0]][:top]
        },
        "total_pct": {
            k: round(v * share, 1)
            for k, v in [kv for kv in total.most_common() if not kv[0].startswith(_PLUMBING)][
                : top * 2
            ]
        },
    }


def _name(frame: str) -> str:
    """``send (starlette/websockets.py:12)`` -> ``send (starlette/websockets.py)``."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    file = match["file"]
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{match['func']} ({file})"
