"""The run views in JupyterLab and Notebook 7, in a real browser (see conftest.py).

A notebook made here runs a workflow and shows its history (``--detailed``), its graph and
table, and live views; a second notebook holds stored outputs of the same tables, which the
front end shows untrusted (sanitized: no ``<style>``) until the notebook runs again. What is
asserted is what the learner would see: computed styles and positions, and text.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import JupyterServer, screenshot, wait_for, start_run_all

nbformat = pytest.importorskip("nbformat")

SETUP = """%config DurableLab.db_path = ':memory:'
%load_ext kernel_ext"""
ACTIVITY = """%%activity
from datetime import timedelta
from engine import activity, workflow

@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}!"
"""
WORKFLOWS = """%%workflow
@workflow.defn
class Hello:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(greet, name, start_to_close_timeout=timedelta(seconds=5))

@workflow.defn
class Waits:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.go)
        return "went"

    @workflow.signal
    def proceed(self) -> None:
        self.go = True
"""
RUN_CELLS = [
    SETUP,
    ACTIVITY,
    WORKFLOWS,
    "%worker start --task-queue q",
    "%workflow execute --type Hello --task-queue q --workflow-id hello-1 --input '\"Ada\"'",
    "%workflow show --workflow-id hello-1 --detailed",
    "%workflow show --workflow-id hello-1 --output graph",
    "done = %workflow start --type Hello --task-queue q --workflow-id hello-2 --input '\"Bob\"'\nawait done\ndone",
    "waiting = %workflow start --type Waits --task-queue q --workflow-id waits-1\nwaiting",
    'print("ALL" + " DONE")',
]


def _notebook(path: Path, cells: list[str], outputs: dict[int, list[Any]] | None = None) -> str:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    for index, cell_outputs in (outputs or {}).items():
        nb.cells[index].outputs = cell_outputs
    nbformat.write(nb, path)
    return path.name


def _stored_tables(root: Path) -> str:
    """A notebook whose stored outputs are a ``--detailed`` event table and a run view."""
    from engine.history import load_history
    from kernel_ext.display import EventTable, RunView

    history = load_history(Path(__file__).resolve().parents[1] / "histories" / "saga.json")
    outputs = {
        0: [nbformat.v4.new_output("display_data", data={"text/html": EventTable(history, detailed=True).to_html(), "text/plain": "events"})],
        1: [nbformat.v4.new_output("display_data", data={"text/html": RunView(history).to_html(), "text/plain": "run"})],
    }
    return _notebook(root / "stored.ipynb", ["# detailed", "# run view"], outputs)


def open_notebook(server: JupyterServer, page: Any, name: str) -> None:
    page.goto(server.notebook_url(name))
    try:
        page.wait_for_selector(".jp-Notebook", timeout=60_000)
    except Exception:
        screenshot(page, f"failed-to-open-{name}")
        raise
    server.wait_idle(name)


def run_all(page: Any, until: str, timeout: float = 120.0) -> None:
    start_run_all(page)
    page.get_by_text(until, exact=True).wait_for(timeout=timeout * 1000)


ALIGNMENTS = """(selector) => Array.from(document.querySelectorAll(selector),
    (cell) => getComputedStyle(cell).textAlign)"""

# For each non-blank line of each <pre> in a table: its indent (in characters) and the x
# position of its first visible character.
INDENTS = """(selector) => Array.from(document.querySelectorAll(selector), (pre) => {
    const node = pre.firstChild;
    if (!node || node.nodeType !== Node.TEXT_NODE) return [];
    pre.scrollIntoView();  // JupyterLab does not lay out cells scrolled out of view
    if (!pre.getClientRects().length) return [];  // inside a closed <details>
    const out = [];
    let offset = 0;
    for (const line of node.textContent.split('\\n')) {
        const indent = line.length - line.trimStart().length;
        if (line.trim()) {
            const range = document.createRange();
            range.setStart(node, offset + indent);
            range.setEnd(node, offset + indent + 1);
            out.push([indent, range.getBoundingClientRect().left]);
        }
        offset += line.length + 1;
    }
    return out;
})"""


GRAPHS = """(scope) => Array.from(document.querySelectorAll(scope + ' .durable-lab-graph'), (graph) => {
    graph.scrollIntoView();
    const inline = graph.querySelector('.durable-lab-svg');
    const image = graph.querySelector('img.durable-lab-graph-image');
    return {
        inline: inline ? getComputedStyle(inline).display : 'missing',
        svg: !!(inline && inline.querySelector('svg')),
        text: graph.textContent,
        image: image ? getComputedStyle(image).display : 'missing',
        loaded: image ? image.complete && image.naturalWidth > 0 : false,
    };
})"""


def assert_graphs_show(page: Any, scope: str, what: str, *, trusted: bool, saga: bool) -> None:
    """Trusted outputs show the inline SVG (with its tooltips); untrusted ones, whose <svg>
    and <style> the sanitizer drops, show the image instead of the SVG's stripped text. The
    stored notebook's graph is the saga's; the fresh notebook's are not (both stay open in
    JupyterLab, and a trusted output's stylesheet applies to the whole page)."""
    graphs = [g for g in page.evaluate(GRAPHS, scope) if ("SagaWorkflow" in g["text"]) == saga]
    assert graphs, f"no graphs in {what}"
    for graph in graphs:
        graph["text"] = graph["text"][:100]
        if trusted:
            assert graph["inline"] == "block" and graph["svg"] and graph["image"] == "none", f"{what}: {graph}"
        else:
            assert graph["inline"] == "none" and graph["image"] != "none" and graph["loaded"], f"{what}: {graph}"


def assert_left_aligned(page: Any, scope: str, what: str) -> int:
    found = page.evaluate(ALIGNMENTS, f"{scope} table.durable-lab-table td, {scope} table.durable-lab-table th")
    assert found, f"no durable-lab table cells in {what}"
    assert set(found) <= {"left", "start"}, f"{what}: cells aligned {sorted(set(found))}"
    return len(found)


def assert_indented(page: Any, scope: str, what: str) -> None:
    trees = [t for t in page.evaluate(INDENTS, f"{scope} table.durable-lab-table pre") if len(t) > 1]
    assert trees, f"no attribute trees in {what}"
    for tree in trees:
        x_of: dict[int, set[int]] = {}
        for indent, x in tree:
            x_of.setdefault(indent, set()).add(round(x))
        for indent, xs in x_of.items():
            assert max(xs) - min(xs) <= 1, f"{what}: lines indented {indent} start at {sorted(xs)}"
        starts = [min(x_of[indent]) for indent in sorted(x_of)]
        assert starts == sorted(set(starts)), f"{what}: deeper lines do not start further right: {x_of}"


def check_live_view_says_when_it_stops(server: JupyterServer, page: Any, name: str, front_end: str) -> None:
    """A displayed handle is the run's explorer. While the kernel answers its heartbeat it says
    it follows the run; after a kernel restart it says the kernel is not answering."""
    explorer = page.locator(".dlab-explorer", has_text="waits-1").first
    explorer.locator(".dlab-live", has_text="live").wait_for(timeout=30_000)
    gone = explorer.locator(".dlab-gone")
    deadline = time.monotonic() + 8  # longer than the explorer waits for an answer
    while time.monotonic() < deadline:
        assert not gone.is_visible(), "the explorer said the kernel was gone while it was alive"
        time.sleep(0.5)
    kernel = server.kernel_of(name)
    assert kernel is not None
    server.api(f"kernels/{kernel['id']}/restart", method="POST")
    gone.wait_for(state="visible", timeout=30_000)
    assert "not answering" in gone.inner_text()
    assert not explorer.locator(".dlab-live").is_visible(), "the 'live' line still shows beside the message"
    screenshot(page, f"{front_end}-live-view-after-restart", explorer)


@pytest.mark.parametrize("front_end", ["lab", "notebook7"])
def test_tables_are_left_aligned_and_live_views_say_when_they_stop(front_end: str, request: Any, page: Any) -> None:
    server: JupyterServer = request.getfixturevalue(front_end)
    stored = _stored_tables(server.root)
    open_notebook(server, page, stored)
    page.wait_for_selector("table.durable-lab-table pre")
    assert_left_aligned(page, ".jp-OutputArea-output", f"stored outputs in {front_end}")
    assert_indented(page, ".jp-OutputArea-output", f"a stored --detailed table in {front_end}")
    assert_graphs_show(page, ".jp-OutputArea-output", f"a stored run view in {front_end}", trusted=False, saga=True)
    screenshot(page, f"{front_end}-stored-graph", page.locator(".durable-lab-graph").first)
    screenshot(page, f"{front_end}-stored-detailed", page.locator("table.durable-lab-table:visible").first)

    name = _notebook(server.root / f"views-{front_end}.ipynb", RUN_CELLS)
    open_notebook(server, page, name)
    run_all(page, "ALL DONE")
    assert_left_aligned(page, ".jp-OutputArea-output", f"fresh outputs in {front_end}")
    assert_indented(page, ".jp-OutputArea-output", f"a fresh --detailed table in {front_end}")
    assert_graphs_show(page, ".jp-OutputArea-output", f"fresh outputs in {front_end}", trusted=True, saga=False)
    if front_end == "lab":  # the stored notebook opened beside trusted outputs, in another tab
        page.evaluate("(path) => window.jupyterapp.commands.execute('docmanager:open', {path})", stored)
        page.locator(".durable-lab-graph", has_text="SagaWorkflow").first.wait_for(state="attached", timeout=60_000)
        assert_graphs_show(page, ".jp-OutputArea-output", "stored outputs beside trusted ones", trusted=False, saga=True)
        page.evaluate("(path) => window.jupyterapp.commands.execute('docmanager:open', {path})", name)
    wait_for("the handles' explorers to draw their graphs", lambda: page.locator(".dlab-explorer .dlab-graph svg").count() >= 2, 60)
    screenshot(page, f"{front_end}-detailed", page.locator("table.durable-lab-table:visible:has(pre)").first)
    screenshot(page, f"{front_end}-live-view", page.locator(".dlab-explorer", has_text="waits-1").first)
    check_live_view_says_when_it_stops(server, page, name, front_end)


def test_tutorial_01_runs_in_jupyterlab_as_a_learner_sees_it(lab: JupyterServer, page: Any) -> None:
    """The first tutorial, Run All in JupyterLab: every cell runs, down to the exercise's
    check (whose verdict says "Not yet", with a hint), with no error, and its tables are
    left-aligned."""
    source = Path(__file__).resolve().parents[2] / "notebooks" / "tutorials" / "01-hello-workflow.ipynb"
    nb = nbformat.read(source, as_version=4)
    name = "01-hello-workflow.ipynb"
    nbformat.write(nb, lab.root / name)
    open_notebook(lab, page, name)
    screenshot(page, "lab-tutorial-01-opened")
    start_run_all(page)
    verdict = page.locator(".dlab-verdict").first
    verdict.wait_for(timeout=120_000)
    lab.wait_idle(name)
    text = verdict.inner_text()
    assert "Not yet: greet everyone" in text and "Hint:" in text, text
    screenshot(page, "lab-tutorial-01-verdict", verdict)
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert errors.count() == 0, [errors.nth(i).inner_text() for i in range(errors.count())]
    assert_left_aligned(page, ".jp-OutputArea-output", "tutorial 01 after Run All")
    assert_indented(page, ".jp-OutputArea-output", "tutorial 01's --detailed table")
    screenshot(page, "lab-tutorial-01-graph", page.locator(".jp-OutputArea-output svg").first)
