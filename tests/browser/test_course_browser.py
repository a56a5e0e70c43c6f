"""The course's newer exercises, as a learner sees them in JupyterLab: Run All of a lesson as
given (every check says "Not yet", with its hint) or with its solutions in place (every check
says "Well done"), with no stderr, and one screenshot of each new verdict (in $DLAB_SCREENSHOTS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import JupyterServer, screenshot, start_run_all, wait_for
from tests.browser.test_views_browser import open_notebook

nbformat = pytest.importorskip("nbformat")

TUTORIALS = Path(__file__).resolve().parents[2] / "notebooks" / "tutorials"
# Lesson -> the title of each exercise added last, as its verdict shows it.
EXERCISES = {
    "03-subscription.ipynb": ["a run per quarter"],
    "07-crash-lab-3-processes.ipynb": ["approve it from a terminal"],
    "08-replay-debugging.ipynb": ["what decided it", "every delay"],
    "11-sandbox.ipynb": ["one price list for every run"],
    "13-timeouts-heartbeats.ipynb": ["a scarce GPU, a hard deadline"],
    "15-children-and-updates.ipynb": ["deliveries that outlive the order"],
    "16-cancellation.ipynb": ["stop the runaway, bound the next"],
}


# Each lesson as given; two with their solutions (the same verdict view, green). The nbclient
# tests run every solution: here the point is what the browser shows (~25 s a Run All).
CASES = [(lesson, False) for lesson in sorted(EXERCISES)] + [
    ("15-children-and-updates.ipynb", True), ("16-cancellation.ipynb", True),
]


@pytest.mark.parametrize(("lesson", "solved"), CASES, ids=[f"{'solved' if s else 'practice'}-{n[:2]}" for n, s in CASES])
def test_the_new_exercises_verdicts(lesson: str, solved: bool, lab: JupyterServer, page: Any) -> None:
    from tests.notebooks.test_notebooks_execute import tagged, with_solutions

    nb = nbformat.read(TUTORIALS / lesson, as_version=4)
    nb = with_solutions(nb) if solved else nb
    checks = len(tagged(nb, "check"))
    name = f"{'solved' if solved else 'practice'}-{lesson}"
    nbformat.write(nb, lab.root / name)
    open_notebook(lab, page, name)
    start_run_all(page, lab, name)
    verdicts = page.locator(".dlab-verdict")
    wait_for(f"the {checks} verdicts of {name}", lambda: verdicts.count() == checks, 240)
    lab.wait_idle(name)
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert errors.count() == 0, [errors.nth(i).inner_text() for i in range(errors.count())]
    shown = [verdicts.nth(i).inner_text() for i in range(checks)]
    for title in EXERCISES[lesson]:
        index, text = next((i, t) for i, t in enumerate(shown) if title in t)
        expected = "Well done" if solved else "Not yet"
        assert text.startswith(f"{expected}: {title}"), text
        assert ("Hint:" in text) != solved, text
        screenshot(page, f"course-{'solved' if solved else 'practice'}-{lesson[:2]}-{title.replace(' ', '-').replace(',', '')}",
                   verdicts.nth(index))
