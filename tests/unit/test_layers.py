"""The layering of ARCHITECTURE.md, checked on the real import graph (import-linter)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def _lint(package_parent: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [LINT_IMPORTS, "--config", str(ROOT / ".importlinter"), "--no-cache"],
        cwd=package_parent,
        capture_output=True,
        text=True,
        env=env,
    )


def test_import_contracts_hold() -> None:
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_one_layers_contract_without_exceptions() -> None:
    text = (ROOT / ".importlinter").read_text()
    assert text.count("type = layers") == 1
    assert "ignore_imports" not in text


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    copy = tmp_path / "labkit"
    shutil.copytree(ROOT / "labkit", copy, ignore=shutil.ignore_patterns("__pycache__"))
    model = copy / "model" / "selectors.py"
    model.write_text("import labkit.checks  # an upward import\n" + model.read_text())
    proc = _lint(tmp_path)
    assert proc.returncode != 0
    assert "labkit.model.selectors -> labkit.checks" in proc.stdout
