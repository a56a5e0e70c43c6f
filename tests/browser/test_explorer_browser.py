"""The run explorer in a real browser (see conftest.py): clicks that reach Python and come back,
the timeline, the event table, a live run, a kernel that goes away; and tutorials 01, 05 and
07 with Run All, as a learner runs them. Screenshots of each view go to ``$DLAB_SCREENSHOTS``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import JupyterServer, screenshot, wait_for, start_run_all
from tests.browser.test_views_browser import _notebook, open_notebook, run_all

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("anywidget")

TUTORIALS = Path(__file__).resolve().parents[2] / "notebooks" / "tutorials"
SETUP = """%config DurableLab.db_path = ':memory:'
%load_ext kernel_ext"""
ACTIVITIES = """%%activity
from datetime import timedelta
from engine import activity, workflow
from engine.common import RetryPolicy
from engine.errors import ApplicationError

TRIES = {}

@activity.defn
async def greet(name: str) -> str:
    TRIES[name] = TRIES.get(name, 0) + 1
    if TRIES[name] < 2:
        raise ApplicationError("the greeting service is down")
    return f"Hello, {name}!"
"""
WORKFLOWS = """%%workflow
@workflow.defn
class Hello:
    @workflow.run
    async def run(self, name: str) -> str:
        retry = RetryPolicy(initial_interval=timedelta(milliseconds=300))
        return await workflow.execute_activity(greet, name, start_to_close_timeout=timedelta(seconds=5), retry_policy=retry)

@workflow.defn
class Ticks:
    @workflow.run
    async def run(self, n: int) -> int:
        for _ in range(n):
            await workflow.sleep(timedelta(milliseconds=500))
        return n
"""
CELLS = [
    SETUP,
    ACTIVITIES,
    WORKFLOWS,
    "%worker start --task-queue q",
    "%workflow execute --type Hello --task-queue q --workflow-id hello-1 --input '\"Ada\"'",
    "%workflow show --workflow-id hello-1 --output explorer",
    "ticks = %workflow start --type Ticks --task-queue q --workflow-id ticks-1 --input 40\nticks",
    'print("ALL" + " DONE")',
]

# Every code cell's execution count and outputs, from the notebook model (not the DOM, which
# may not have laid out cells scrolled out of view).
CELLS_STATE = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const out = [];
    for (const cell of panel.content.model.cells) {
        if (cell.type !== 'code') continue;
        out.push({count: cell.executionCount, source: cell.sharedModel.getSource().slice(0, 60), outputs: cell.outputs.toJSON()});
    }
    return out;
}"""
ALIGNMENTS = """(selector) => Array.from(document.querySelectorAll(selector), (cell) => getComputedStyle(cell).textAlign)"""


def problems_in(cells: list[dict[str, Any]]) -> list[str]:
    found = []
    for cell in cells:
        for output in cell["outputs"]:
            if output.get("output_type") == "error":
                found.append(f"{cell['source']!r}: {output.get('ename')}: {output.get('evalue')}")
            elif output.get("output_type") == "stream" and output.get("name") == "stderr":
                found.append(f"{cell['source']!r} wrote to stderr: {str(output.get('text'))[:300]}")
    return found


def run_all_to_the_end(server: JupyterServer, page: Any, name: str, timeout: float = 240.0) -> list[dict[str, Any]]:
    """Run All, then wait until every code cell ran and the kernel is idle; fail on the first
    error or stderr output."""
    start_run_all(page, server, name)

    def finished() -> list[dict[str, Any]] | None:
        cells = page.evaluate(CELLS_STATE)
        found = problems_in(cells)
        assert not found, "\n".join(found)
        return cells if all(cell["count"] is not None for cell in cells) else None

    cells = wait_for(f"every cell of {name} to run", finished, timeout, every=1.0)
    server.wait_idle(name)
    cells = page.evaluate(CELLS_STATE)
    assert not problems_in(cells), "\n".join(problems_in(cells))
    return list(cells)


def assert_no_widget_errors(page: Any, what: str) -> None:
    text = page.evaluate("() => document.body.textContent")
    assert "Error displaying widget" not in text, f"{what}: a widget failed to display"


def assert_explorer_tables_left_aligned(page: Any, explorer: Any, what: str) -> None:
    explorer.locator("button[data-tab=events]").click()
    explorer.locator("table.dlab-events tbody tr").first.wait_for()
    found = page.evaluate(ALIGNMENTS, ".dlab-explorer table.dlab-table td, .dlab-explorer table.dlab-table th")
    assert found and set(found) <= {"left", "start"}, f"{what}: explorer cells aligned {sorted(set(found))}"


def assert_output_tables_left_aligned(page: Any, what: str) -> None:
    cells = page.evaluate(ALIGNMENTS, ".jp-OutputArea-output table.durable-lab-table td, .jp-OutputArea-output table.durable-lab-table th")
    assert cells and set(cells) <= {"left", "start"}, f"{what}: table cells aligned {sorted(set(cells))}"


def click_node(explorer: Any, text: str, expect: str) -> str:
    """Click the graph node showing ``text``; return the details once they show ``expect``."""
    explorer.locator("button[data-tab=graph]").click()
    explorer.locator("g.dlab-node", has_text=text).first.click()
    details = explorer.locator(".dlab-details")
    details.get_by_text(expect, exact=False).first.wait_for(timeout=30_000)
    return str(details.inner_text())


def events_in_title(explorer: Any) -> int:
    found = re.search(r"(\d+) events", explorer.locator(".dlab-title").inner_text())
    return int(found.group(1)) if found else 0


def test_the_explorer_answers_clicks_follows_a_run_and_says_when_the_kernel_is_gone(lab: JupyterServer, page: Any) -> None:
    name = _notebook(lab.root / "explorer.ipynb", CELLS)
    open_notebook(lab, page, name)
    run_all(page, "ALL DONE")
    explorers = page.locator(".dlab-explorer")
    wait_for("two explorers", lambda: explorers.count() == 2, 60)
    assert_no_widget_errors(page, "the explorer notebook")
    hello, ticks = explorers.nth(0), explorers.nth(1)

    # The graph: a click on the activity reaches Python, whose details come back.
    details = click_node(hello, "greet", "Attempts (2)")
    for expected in ("ActivityTaskScheduled", "the greeting service is down", '"Ada"', "failed", "completed"):
        assert expected in details, f"{expected!r} not in the node's details: {details[:600]}"
    screenshot(page, "lab-explorer-graph-details", hello)

    # The timeline: workflow tasks, both attempts of greet and the backoff between them.
    hello.locator("button[data-tab=timeline]").click()
    bars = hello.locator("rect.dlab-bar")
    bars.first.wait_for()
    kinds = [bars.nth(i).get_attribute("data-kind") for i in range(bars.count())]
    assert kinds.count("attempt") == 2 and kinds.count("backoff") == 1 and "workflow_task" in kinds, kinds
    gap = hello.locator("rect.dlab-bar[data-kind=backoff]").bounding_box()
    assert gap and gap["width"] > 10, f"the backoff gap is drawn {gap}"
    screenshot(page, "lab-explorer-timeline", hello)

    # The events: a filter by type, a search, left-aligned cells, a row's details.
    assert_explorer_tables_left_aligned(page, hello, "the explorer in JupyterLab")
    rows = hello.locator("table.dlab-events tbody tr")
    hello.locator("select.dlab-kind").select_option("ActivityTaskScheduled")
    wait_for("one ActivityTaskScheduled row", lambda: rows.count() == 1, 30)
    hello.locator("select.dlab-kind").select_option("")
    hello.locator("input.dlab-search").fill("signal nothing-matches-this")
    wait_for("no rows for a search that matches nothing", lambda: rows.count() == 0, 30)
    hello.locator("input.dlab-search").fill("Hello, Ada")
    wait_for("rows with the result", lambda: 0 < rows.count() < 5, 30)
    rows.first.click()
    hello.locator(".dlab-details").get_by_text("Events (", exact=False).first.wait_for(timeout=30_000)
    screenshot(page, "lab-explorer-events", hello)
    hello.locator("button[data-tab=runs]").click()
    hello.get_by_text("Continue-as-new chain (1 run)").wait_for()
    screenshot(page, "lab-explorer-runs", hello)

    # Live: the running run's explorer gains events while it runs.
    ticks.locator(".dlab-title").get_by_text("events", exact=False).wait_for(timeout=30_000)
    first = wait_for("the live explorer to show events", lambda: events_in_title(ticks), 30)
    wait_for("the live explorer to gain events", lambda: events_in_title(ticks) > first, 30)
    assert "live" in ticks.locator(".dlab-live").inner_text()
    screenshot(page, "lab-explorer-live", ticks)

    # The kernel answers the heartbeat; after a restart the explorer says the kernel is gone.
    gone = ticks.locator(".dlab-gone")
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        assert not gone.is_visible(), "the explorer said the kernel was gone while it was alive"
        time.sleep(0.5)
    kernel = lab.kernel_of(name)
    assert kernel is not None
    lab.api(f"kernels/{kernel['id']}/restart", method="POST")
    gone.wait_for(state="visible", timeout=30_000)
    assert "not answering" in gone.inner_text() and "Run the cell again" in gone.inner_text()
    screenshot(page, "lab-explorer-kernel-gone", ticks)


def _tutorial(server: JupyterServer, page: Any, stem: str) -> str:
    name = f"{stem}.ipynb"
    nbformat.write(nbformat.read(TUTORIALS / name, as_version=4), server.root / name)
    open_notebook(server, page, name)
    return name


def test_tutorial_01_in_jupyterlab_explorer_node_click(lab: JupyterServer, page: Any) -> None:
    name = _tutorial(lab, page, "01-hello-workflow")
    # As stored (before running): the explorer's output shows its static graph, not an error.
    stored = page.locator(".jp-OutputArea-output:has(.durable-lab-run)")  # --output graph's and the explorer's
    wait_for("the stored graphs of tutorial 01", lambda: stored.count() >= 2, 60)
    assert_no_widget_errors(page, "tutorial 01 as stored")
    screenshot(page, "lab-tutorial-01-stored-explorer", stored.last)
    run_all_to_the_end(lab, page, name)
    assert_no_widget_errors(page, "tutorial 01")
    explorer = page.locator(".dlab-explorer", has_text="hello-1").last
    details = click_node(explorer, "compose_greeting", "Attempts (1)")
    assert "ActivityTaskCompleted" in details and "Ada" in details
    screenshot(page, "lab-tutorial-01-explorer", explorer)
    assert_explorer_tables_left_aligned(page, explorer, "tutorial 01's explorer")
    assert_output_tables_left_aligned(page, "tutorial 01")


def test_tutorial_05_timeline_shows_parallel_compensations_overlapping(lab: JupyterServer, page: Any) -> None:
    name = _tutorial(lab, page, "05-trip-booking-saga")
    run_all_to_the_end(lab, page, name)
    assert_no_widget_errors(page, "tutorial 05")
    explorer = page.locator(".dlab-explorer", has_text="trip-grace").first
    explorer.locator("button[data-tab=timeline]").click()
    undo = explorer.locator("rect.dlab-bar[data-kind=compensation]")
    wait_for("two compensation bars", lambda: undo.count() == 2, 30)
    first, second = undo.nth(0).bounding_box(), undo.nth(1).bounding_box()
    assert first and second
    assert first["x"] < second["x"] + second["width"] and second["x"] < first["x"] + first["width"], (first, second)
    assert first["y"] != second["y"], "the two compensations share a lane"
    screenshot(page, "lab-tutorial-05-timeline", explorer)
    assert_explorer_tables_left_aligned(page, explorer, "tutorial 05's explorer")
    assert_output_tables_left_aligned(page, "tutorial 05")


@pytest.mark.parametrize("part", ["07-crash-lab-1-faults", "07-crash-lab-2-crashes", "07-crash-lab-3-processes"])
def test_tutorial_07_runs_all_without_errors(lab: JupyterServer, page: Any, part: str) -> None:
    name = _tutorial(lab, page, part)
    cells = run_all_to_the_end(lab, page, name, timeout=300)
    assert cells and cells[-1]["outputs"], f"the last cell of {part} has no output"
    assert_no_widget_errors(page, part)
    assert_output_tables_left_aligned(page, part)
    screenshot(page, f"lab-tutorial-{part}-end")


def test_tutorial_01_in_notebook_7(notebook7: JupyterServer, page: Any) -> None:
    name = _tutorial(notebook7, page, "01-hello-workflow")
    run_all_to_the_end(notebook7, page, name)
    assert_no_widget_errors(page, "tutorial 01 in Notebook 7")
    explorer = page.locator(".dlab-explorer", has_text="hello-1").last
    details = click_node(explorer, "compose_greeting", "Attempts (1)")
    assert "ActivityTaskScheduled" in details
    assert_explorer_tables_left_aligned(page, explorer, "tutorial 01's explorer in Notebook 7")
    screenshot(page, "notebook7-tutorial-01-explorer", explorer)


BIG_CELLS = [
    SETUP,
    """%%activity
import asyncio
from datetime import timedelta
from engine import activity, workflow

@activity.defn
async def step(i: int) -> int:
    return i + 1
""",
    """%%workflow
@workflow.defn
class FanOut:
    @workflow.run
    async def run(self, n: int) -> int:
        done = await asyncio.gather(*(workflow.execute_activity(step, i, start_to_close_timeout=timedelta(seconds=60)) for i in range(n)))
        return sum(done)
""",
    "%worker start --task-queue big",
    "%workflow execute --type FanOut --task-queue big --workflow-id big --input 3300",
    "import time\nstarted = time.perf_counter()\nbig = %workflow show --workflow-id big --output explorer\nbuilt = time.perf_counter() - started\nbig",
    'print(f"{len(big.snapshot.history.events)} events, explorer built in {built:.2f} s")\nprint("BIG" + " DONE")',
]


def test_a_10000_event_run_opens_collapsed_and_paged(lab: JupyterServer, page: Any) -> None:
    """A fan-out of 3,300 activities (about 10,000 events): the graph collapses them, the
    timeline shares lanes, the table pages. Times are printed (the benchmark has the figures)."""
    name = _notebook(lab.root / "big.ipynb", BIG_CELLS)
    open_notebook(lab, page, name)
    start_run_all(page, lab, name)
    try:
        done = page.locator(".jp-OutputArea-output", has_text="explorer built in").first
        done.wait_for(state="attached", timeout=300_000)
    except Exception:
        screenshot(page, "lab-explorer-10000-events-failed")
        raise
    built = str(done.text_content())
    started = time.perf_counter()
    explorer = page.locator(".dlab-explorer").first
    explorer.locator(".dlab-graph svg").wait_for(timeout=60_000)
    drawn = time.perf_counter() - started
    events = events_in_title(explorer)
    assert events > 9_900, f"the run has {events} events"
    assert explorer.locator("g.dlab-node").count() < 10, "the 3,300 parallel steps were not collapsed"
    click_node(explorer, "step x3300", "Events (")
    explorer.locator("button[data-tab=events]").click()
    explorer.get_by_text(f"page 1 of {(events + 49) // 50}", exact=False).wait_for()
    assert explorer.locator("table.dlab-events tbody tr").count() == 50
    started = time.perf_counter()
    explorer.get_by_text("next ›").click()
    explorer.get_by_text(f"page 2 of {(events + 49) // 50}", exact=False).wait_for()
    paged = time.perf_counter() - started
    explorer.locator("button[data-tab=timeline]").click()
    bars = explorer.locator("rect.dlab-bar").count()
    assert 0 < bars <= 2000
    screenshot(page, "lab-explorer-10000-events", explorer)
    print(f"\n{built}; graph shown {drawn:.2f} s after the cell's output; next page {paged:.2f} s; {bars} bars")
