"""Tutorial 08 in JupyterLab and Notebook 7: Run All, then drive the replay debugger with its buttons.

What is asserted is what the learner sees: the debugger views render, the marked line and
the locals table change as forward and back are pressed, and back returns to what was shown
before. Screenshots go to ``$DLAB_SCREENSHOTS`` (see conftest.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import JupyterServer, screenshot, wait_for, start_run_all
from tests.browser.test_views_browser import assert_left_aligned, open_notebook

nbformat = pytest.importorskip("nbformat")

TUTORIAL = Path(__file__).resolve().parents[2] / "notebooks" / "tutorials" / "08-replay-debugging.ipynb"

SHOWN = """(view) => {
    const status = view.querySelector('.dlab-status');
    const marked = view.querySelectorAll('.dlab-source .dlab-current');  // old code first, yours last
    const current = marked.length ? marked[marked.length - 1] : null;
    const locals = view.querySelector('.dlab-locals');
    return {
        status: status ? status.innerText : '',
        line: current ? current.innerText : '',
        marked: marked.length,
        locals: locals ? locals.innerText : '',
    };
}"""


def shown(view: Any) -> dict[str, Any]:
    return dict(view.evaluate(SHOWN))


# Click a button and resolve with the milliseconds until the status line shows another step:
# the whole round trip (the click to the kernel, the debugger's move, every pane redrawn).
TIMED_CLICK = """(view, label) => new Promise((resolve) => {
    const status = view.querySelector('.dlab-status');
    const before = status.innerText;
    const button = Array.from(view.querySelectorAll('button')).find((b) => b.innerText.trim() === label);
    const started = performance.now();
    const check = () => {
        const now = view.querySelector('.dlab-status');
        if (now && now.innerText !== before) { resolve(performance.now() - started); return; }
        requestAnimationFrame(check);
    };
    button.click();
    requestAnimationFrame(check);
})"""


def press(view: Any, label: str) -> dict[str, Any]:
    """Click a button of the view and wait until its status line changes."""
    before = shown(view)["status"]
    view.get_by_role("button", name=label, exact=True).click()
    wait_for(f"the view to move after {label}", lambda: shown(view)["status"] != before, 30)
    return shown(view)


@pytest.mark.parametrize("front_end", ["lab", "notebook7"])
def test_tutorial_08_steps_forward_and_back(front_end: str, request: Any, page: Any) -> None:
    server: JupyterServer = request.getfixturevalue(front_end)
    name = TUTORIAL.name
    nbformat.write(nbformat.read(TUTORIAL, as_version=4), server.root / name)
    open_notebook(server, page, name)
    start_run_all(page, server, name)
    page.get_by_text("the workflow slept 4 times, your list has 0 delays", exact=False).wait_for(timeout=180_000)
    views = page.locator(".dlab-replay")
    wait_for("both debugger views", lambda: views.count() == 2, 60)
    assert not page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count()

    # The first view (which the notebook's later cells moved from Python): jump to the
    # divergence, where the new code shows beside the code that recorded the history.
    first = views.nth(0)
    first.scroll_into_view_if_needed()
    wait_for("the first view to draw", lambda: shown(first)["status"], 30)
    at_divergence = press(first, "⚠ divergence")
    assert "divergence at event 11" in at_divergence["status"]
    assert "limit = await workflow.execute_activity(express_limit" in at_divergence["line"]
    assert at_divergence["marked"] == 2 and "the code that recorded the history" in first.inner_text()
    screenshot(page, f"{front_end}-tutorial-08-divergence", first)

    # The storm's view: from the first step, forward until lines and locals change, then back.
    storm = views.nth(1)
    storm.scroll_into_view_if_needed()
    wait_for("the storm's view to draw", lambda: shown(storm)["status"], 30)
    start = press(storm, "first")
    assert start["status"].startswith("step 0 of")
    seen = [start]
    for _ in range(30):
        seen.append(press(storm, "forward ▶"))
        lines = {s["line"] for s in seen if s["line"]}
        if len(lines) >= 4 and any("attempt" in s["locals"] for s in seen):
            break
    lines = [s["line"] for s in seen if s["line"]]
    assert len(set(lines)) >= 4, f"the marked line did not move: {lines}"
    localses = {s["locals"] for s in seen}
    assert len(localses) >= 2 and any("attempt" in text for text in localses), localses
    screenshot(page, f"{front_end}-tutorial-08-storm-forward", storm)
    back = press(storm, "◀ back")
    assert back == seen[-2], f"back showed {back}, before it was {seen[-2]}"
    assert_left_aligned(page, ".dlab-replay", "the debugger's tables")
    screenshot(page, f"{front_end}-tutorial-08-storm-back", storm)
    marked_node = storm.locator(".dlab-graph .dlab-current-node")
    assert marked_node.count() == 1, "the run graph marks no node of the current step"
    screenshot(page, f"{front_end}-tutorial-08-storm-history-and-graph", storm.locator(".dlab-history"))

    # How long a step takes to show, click to redrawn view (printed, not asserted: the
    # machine is shared). The issue aims at under 100 ms.
    press(storm, "first")
    timings = sorted(float(storm.evaluate(TIMED_CLICK, "forward ▶")) for _ in range(15))
    print(f"\n{front_end} step: median {timings[len(timings) // 2]:.0f} ms, min {timings[0]:.0f} ms, max {timings[-1]:.0f} ms over {len(timings)} clicks")
