"""bench/stats.py ``raise_nofile``: the benchmark's servers and clients get the open-file limit
that many readers need, the hard one too where the user may raise it (root here and in CI)."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

from helpers import ROOT

# A process that starts with low limits, raises them, and starts a child (as bench/ spawns
# livefeed and redis-server): the child's limits are printed.
_SCRIPT = """
import subprocess, sys
sys.path.insert(0, sys.argv[1])
import stats
print(stats.raise_nofile())
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
try:
    print(*stats.nofile_of(child.pid))
finally:
    child.kill()
    child.wait()
"""


def _may_raise_hard_limits() -> bool:
    """CAP_SYS_RESOURCE (bit 24) is in this process's effective set: root usually, not in
    every container (this one drops it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 24 & 1)
    return False


def _low_limits() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, 4096))


def test_raise_nofile_lifts_the_hard_limit_for_what_it_starts_or_says_why_not() -> None:
    """From 512/4096: a process with CAP_SYS_RESOURCE (root, mostly) and its children get
    fs.nr_open both soft and hard; any other gets 4096/4096 and a line on stderr saying why."""
    ran = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(ROOT / "bench")],
        capture_output=True, text=True, timeout=60, preexec_fn=_low_limits, check=True,
    )  # fmt: skip
    soft, child = ran.stdout.split("\n", 1)
    child_soft, child_hard = (int(n) for n in child.split())
    nr_open = min(int(Path("/proc/sys/fs/nr_open").read_text()), 1 << 20)
    if _may_raise_hard_limits():
        assert int(soft) == child_soft == child_hard == nr_open, ran.stderr
        assert ran.stderr == ""
    else:
        assert int(soft) == child_soft == child_hard == 4096
        assert "needs root or CAP_SYS_RESOURCE" in ran.stderr
