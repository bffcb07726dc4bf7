"""Browser fixtures: one JupyterLab server for the module, its kernels on a lab of their own, and
headless Chromium (Debian's package) driven by Playwright; all stopped, the lab taken down."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from notebook_server import JupyterLab, running_jupyterlab

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# The lab the lessons connect to (LABKIT_LAB), never a learner's `netlab`.
LAB_NAME = "tbrowser"
SETUP_HINT = (
    "run `sudo make setup` (as root on Debian it installs chromium; playwright is a dev extra)"
)


def _down_lab() -> None:
    """Take the test's lab down on whichever backend holds it, with the Flannel and Cilium labs
    lessons 04 and 05 bring up beside it (named from it)."""
    from labkit.lab import down

    for name in (LAB_NAME, LAB_NAME + "-flannel", LAB_NAME + "-cilium"):
        down(name)


@pytest.fixture(scope="module", autouse=True)
def requirements() -> None:
    """Skip, with the reason, where Debian's chromium or Playwright is missing, or where no
    backend can bring up the lab the lessons connect to (before anything starts)."""
    from labkit.errors import LabError
    from labkit.lab import choose_backend

    if shutil.which("chromium") is None:
        pytest.skip(f"the browser test needs Debian's chromium package: {SETUP_HINT}")
    pytest.importorskip(
        "playwright.sync_api", reason=f"the browser test needs Playwright: {SETUP_HINT}"
    )
    try:
        choose_backend("auto")
    except LabError as exc:
        pytest.skip(f"the lessons bring a lab up: {exc.what} Run `sudo make test`.")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Headless Chromium from Debian's package, driven by Playwright (never its own download)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable is not None
    # Chromium refuses to run as root with its own sandbox; the pages are our loopback server's.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    """One JupyterLab server for every lesson; its kernels use lab LAB_NAME and a temporary
    progress file, and the lab is taken down afterwards."""
    home = tmp_path_factory.mktemp("jupyterlab")
    env = {"LABKIT_LAB": LAB_NAME, "LABKIT_PROGRESS": str(home / "progress.jsonl")}
    _down_lab()
    try:
        with running_jupyterlab(home, env) as server:
            yield server
    finally:
        _down_lab()
