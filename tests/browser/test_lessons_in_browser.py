"""Every lesson opened in a real JupyterLab in headless Chromium, as a learner would: run all cells
through the Run menu, then no error output; full-page screenshots under build/screenshots/."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from notebook_server import LESSONS, ROOT, JupyterLab

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.timeout(1200)]

SCREENSHOTS = ROOT / "build" / "screenshots"
WIDTH, NARROW_WIDTH, HEIGHT = 1280, 1024, 900
# Bounds, generous for a loaded 2-CPU machine (a lesson may bring a Kind cluster up).
OPEN_MS = 120_000
RUN_S = 900.0
# A cell shows `[*]` within a tenth of a second of Run All; this long without means it was lost.
CLICK_S = 10.0
# The kernel reports idle between two queued cells; quiet this long means the run is over.
SETTLE_MS = 2_000

# True while cells still run: a `[*]` prompt, or the kernel not idle.
RUNNING_JS = """() => {
  const panel = document.querySelector('.jp-NotebookPanel');
  const status = panel.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status;
  const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
  return status !== 'idle' || prompts.some(p => p.textContent.includes('*'));
}"""

# True once Run All has reached a code cell: it shows `[*]` (queued or running) or a count.
STARTED_JS = """() => [...document.querySelectorAll(
  '.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')]
  .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"""

# Code cells with a source that show no execution count: Run All stopped before them (after an
# exception, or a kernel that died).
NOT_RUN_JS = """() => [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell')]
  .map(c => [c.querySelector('.cm-content').innerText.trim(),
             c.querySelector('.jp-InputPrompt').textContent])
  .filter(([source, prompt]) => source !== '' && !/\\[\\d+\\]/.test(prompt))
  .map(([source]) => source.slice(0, 80))"""

# Outputs with a part wider than its box (clipped, or scrolled sideways) at the window's width:
# their first line.
TOO_WIDE_JS = """() => [...document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-output')]
  .filter(o => [o, ...o.querySelectorAll('*')].some(e =>
    e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible'))
  .map(o => o.innerText.trim().split('\\n')[0].slice(0, 60))"""

# How far the notebook scrolls beyond its window.
OVERFLOW_JS = """() => {
  const s = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer');
  return s.scrollHeight - s.clientHeight;
}"""


def _started_within(page: Page, seconds: float) -> bool:
    """Whether a code cell shows `[*]` or a count within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if page.evaluate(STARTED_JS):
            return True
        page.wait_for_timeout(250)
    return False


def _run_all_cells(page: Page) -> None:
    """Run every cell through the Run menu, then wait (bounded) until no cell runs.

    While the kernel still connects, JupyterLab drops the command without a trace (its status
    reads idle before the kernel starts), so the click is repeated until a cell starts.
    """
    deadline = time.monotonic() + OPEN_MS / 1000
    while True:
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        if _started_within(page, CLICK_S):
            break
        assert time.monotonic() < deadline, "Run > Run All Cells never started a cell"
    deadline = time.monotonic() + RUN_S
    while True:
        remaining_ms = (deadline - time.monotonic()) * 1000
        assert remaining_ms > 0, f"cells still running after {RUN_S:.0f} s"
        page.wait_for_function(f"() => !({RUNNING_JS})()", timeout=remaining_ms, polling=500)
        page.wait_for_timeout(SETTLE_MS)
        if not page.evaluate(RUNNING_JS):
            return


def _screenshot(page: Page, width: int, name: str) -> list[str]:
    """A screenshot of the whole notebook at ``width`` px (the window grown to fit every cell);
    returns the outputs wider than their box at that width."""
    page.set_viewport_size({"width": width, "height": HEIGHT})
    for _ in range(5):
        page.wait_for_timeout(300)
        overflow = int(page.evaluate(OVERFLOW_JS))
        if overflow <= 0:
            break
        size = page.viewport_size
        assert size is not None
        page.set_viewport_size({"width": width, "height": size["height"] + overflow})
    page.screenshot(path=SCREENSHOTS / name, full_page=True)
    return list(page.evaluate(TOO_WIDE_JS))


def _saved_cells(page: Page, path: Path) -> list[dict[str, Any]]:
    """Save the notebook from its toolbar and read its cells back from ``path``.

    In the DOM an exception and a stderr stream look alike (both `.jp-OutputArea-output` with
    data-mime-type application/vnd.jupyter.stderr, pink); the saved notebook tells them apart.
    """
    # Escape closes a dialog that would block the toolbar ("Kernel Restarting" after a crash).
    page.keyboard.press("Escape")
    page.click(".jp-NotebookPanel-toolbar [data-command='docmanager:save']")
    page.wait_for_selector(".lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)", timeout=OPEN_MS)
    return list(json.loads(path.read_text())["cells"])


def _text(output: dict[str, Any]) -> str:
    """An output's text as a learner reads it: a stream's text, or an exception's name and value."""
    if output["output_type"] == "error":
        return f"{output['ename']}: {output['evalue']}"
    text = output.get("text", "")
    return text if isinstance(text, str) else "".join(text)


@pytest.mark.parametrize("lesson", sorted(LESSONS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_lesson_runs_in_jupyterlab(
    chromium: Browser, jupyterlab: JupyterLab, lesson: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A lesson runs to its end from the Run menu with no exception and no traceback shown, and
    leaves its screenshots (light theme, 1280 and 1024 px)."""
    started = time.monotonic()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = chromium.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    context.set_default_timeout(OPEN_MS)
    try:
        page = context.new_page()
        # A workspace per lesson, so no other lesson's tab (and kernel) is restored with it.
        page.goto(
            f"{jupyterlab.url}/lab/workspaces/{lesson.stem}/tree/{lesson.name}"
            f"?token={jupyterlab.token}"
        )
        page.wait_for_selector(
            ".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']",
            timeout=OPEN_MS,
        )
        _run_all_cells(page)
        too_wide = {
            width: _screenshot(page, width, f"{lesson.stem}{suffix}.png")
            for width, suffix in ((WIDTH, ""), (NARROW_WIDTH, f"-{NARROW_WIDTH}"))
        }
        not_run = page.evaluate(NOT_RUN_JS)
        cells = _saved_cells(page, jupyterlab.root_dir / lesson.name)
    finally:
        context.close()
        jupyterlab.shut_down_kernels()
        with capsys.disabled():
            print(f"\n{lesson.name}: {time.monotonic() - started:.1f} s wall", end="")
    outputs = [
        (cell.get("execution_count"), output)
        for cell in cells
        if cell["cell_type"] == "code"
        for output in cell["outputs"]
    ]
    errors = [f"[{n}] {_text(o)}" for n, o in outputs if o["output_type"] == "error"]
    stderr = [f"[{n}] {_text(o)}" for n, o in outputs if o.get("name") == "stderr"]
    with capsys.disabled():
        print(
            f"; stderr (pink) outputs: {[s[:70] for s in stderr]}; outputs wider than their box: "
            + "; ".join(f"{len(lines)} at {width} px {lines}" for width, lines in too_wide.items())
        )
    assert errors == [], f"{lesson.name} shows exceptions: {errors}"
    tracebacks = [s for s in stderr if "Traceback" in s]
    assert tracebacks == [], f"{lesson.name} shows tracebacks on stderr: {tracebacks}"
    assert not_run == [], f"{lesson.name}: Run All did not run these cells: {not_run}"
