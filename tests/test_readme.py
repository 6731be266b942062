"""The README's quick start and examples, typed as written, do what the README says.

Every ``sh`` block of README.md is run in order in one shell, as a newcomer would type it in a
second terminal while ``scripts/demo`` runs in the first; a block marked
``<!-- readme-walk: server -->`` is that first terminal, and ``<!-- readme-walk: skip ... -->``
marks the few that cannot run here (the test suite itself, the benchmark, an interactive client).
The only change made to what is typed: the demo listens on a free port instead of 8000.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import httpx

from helpers import ROOT, wait_for_demo, wait_until
from livefeed.model.roles import REQUIRED
from livefeed.storage.redis_server import free_port

_FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
_MARK = re.compile(r"<!-- readme-walk: (\w+)")


@dataclass(frozen=True)
class Block:
    line: int
    mark: str  # "", "server" or "skip"
    text: str


def readme_blocks() -> list[Block]:
    """The README's ``sh`` blocks in order, each with the walk mark written above it."""
    lines = (ROOT / "README.md").read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        end = i + 1
        while _FENCE.match(lines[end]) is None or lines[end].strip() != "```":
            end += 1
        if fence.group(2) == "sh":
            before = next((line for line in reversed(lines[:i]) if line.strip()), "")
            mark = _MARK.search(before)
            body = textwrap.dedent("\n".join(lines[i + 1 : end]))
            blocks.append(Block(i + 1, mark.group(1) if mark else "", body))
        i = end + 1
    return blocks


def test_the_readme_walk_does_what_the_readme_says(tmp_path: Path) -> None:
    """Quick start, publish with the demo's token, history, correction, day API, replay,
    export/import round trip and check: each README block runs as written and succeeds."""
    blocks = readme_blocks()
    (server_block,) = [b for b in blocks if b.mark == "server"]
    walked = [b for b in blocks if not b.mark]
    assert len(walked) >= 6, "the walk covers the quick start and the examples"

    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")  # a second terminal "in the same folder"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEFEED_", "XDG_"))}
    env.update(HOME=str(home), LIVEFEED_PORT=str(port), LIVEFEED_DEMO_INTERVAL="3600")
    log_path = tmp_path / "demo.log"
    with open(log_path, "wb") as log:
        demo = subprocess.Popen(
            ["bash", "-c", server_block.text], cwd=ROOT, env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(lambda: _healthy(port, demo), 120, f"the demo did not start:\n{_read(log_path)}")
        wait_for_demo(f"http://127.0.0.1:{port}")  # a newcomer takes longer to type than this
        script = "set -euo pipefail\n" + "".join(
            f"echo '::block {b.line}::'\n{b.text.replace('127.0.0.1:8000', f'127.0.0.1:{port}')}\n"
            for b in walked
        )
        done = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(30)
    out = done.stdout
    assert done.returncode == 0, f"a README block failed:\n{out}\n{done.stderr}"
    assert re.search(r"published brief \d+-\d+", out), out
    assert "livefeed check: fine" in out
    assert '"versions"' in out, "the history example shows the brief's versions"
    assert '"version":2' in out, "the correction example made version 2"
    assert '"correction":{"note":"An earlier version gave the wrong time"' in out, "a public one"
    assert '"briefs"' in out and '"timezone"' in out, "the day API example shows a day"
    assert re.search(r"^-- \d{4}-\d\d-\d\d \(Europe/Lisbon\) at 600x --$", out, re.M), out
    assert re.search(r"^identical$", out, re.M), "export, import and export again match"
    assert '"status":"published","owner":"Field reporter"' in out or re.search(
        r'"draft":\{[^\n]*"status":"published"', out
    ), "the contributor's draft was published"
    assert '"status":"scheduled"' in out, "the scheduling example scheduled a draft"
    assert re.search(r'\{"audit":\{"id":"[^"]+","action":"draft_', out), "export --audit"
    assert '"code":"forbidden_role"' in out, "the roles example shows a contributor refused"


def test_the_readme_roles_table_is_the_one_in_model_roles() -> None:
    """The README's table of actions and their lowest roles says what ``REQUIRED`` says."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("<!-- roles-table:") :].split("\n\n")[0]
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \|", table, re.M)
    assert dict(rows) == {action.value: role.value for action, role in REQUIRED.items()}


def _healthy(port: int, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        raise RuntimeError("scripts/demo exited")
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
