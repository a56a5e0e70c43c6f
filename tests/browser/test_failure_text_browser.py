"""A failed run as tutorial 16 prints it, in JupyterLab: ``str()`` of ``WorkflowFailureError`` is
temporalio's bare "Workflow execution failed", so the lesson prints the cause's text beside it,
and the learner still reads why the run ended (cancelled, timed out). One screenshot."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import JupyterServer, screenshot, start_run_all, wait_for
from tests.browser.test_views_browser import open_notebook

LESSON = Path(__file__).resolve().parents[2] / "notebooks" / "tutorials" / "16-cancellation.ipynb"
CANCELLED = "WorkflowFailureError: Workflow execution failed / cause: CancelledError: Workflow cancelled"
TIMED_OUT = "WorkflowFailureError: Workflow execution failed / cause: TimeoutError: Workflow timed out"


def test_a_failed_runs_cause_is_on_the_page(lab: JupyterServer, page: Any) -> None:
    pytest.importorskip("nbformat")
    shutil.copy(LESSON, lab.root / LESSON.name)
    open_notebook(lab, page, LESSON.name)
    start_run_all(page, lab, LESSON.name)
    outputs = page.locator(".jp-OutputArea-output")
    wait_for("the timed-out run's line", lambda: page.get_by_text(TIMED_OUT).count() == 1, 240)
    lab.wait_idle(LESSON.name)
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert errors.count() == 0, [errors.nth(i).inner_text() for i in range(errors.count())]
    cancelled = page.get_by_text(CANCELLED)
    assert cancelled.count() == 1, [outputs.nth(i).inner_text() for i in range(outputs.count())]
    screenshot(page, "failure-text-16-cancelled", cancelled)
