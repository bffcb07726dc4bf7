"""The layering of DESIGN.md, checked on the real import graph (import-linter)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    proc = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), str(ROOT / ".importlinter")],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
