"""The package's layers: every import points down (or across), never up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_module_imports_a_layer_above_its_own() -> None:
    """``scripts/layers`` finds no upward import in livefeed/."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "layers")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 upward imports" in result.stdout
