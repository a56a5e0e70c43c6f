"""The idempotency-key exercise of tutorial 07 answers each wrong key with the right advice.

The tutorial's own cells (the bank, the transfer, the check) run in one kernel; between them
the exercise cell is filled with the keys a learner may write, and the check's answer to
each is compared with what is really wrong with that key.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.notebooks.test_notebooks_execute import NOTEBOOK_DIR, execute, stdout_of

nbformat = pytest.importorskip("nbformat")

TUTORIAL = NOTEBOOK_DIR / "tutorials" / "07-crash-lab.ipynb"
# (key expression, a phrase the check's answer must hold)
KEYS = [
    ("None", "passes no key yet"),
    ('f"{info.workflow_run_id}/{info.activity_id}/{info.attempt}"', "changed between two attempts"),
    ("info.workflow_run_id", "withdraw and deposit send the same key"),
    ("str(info.activity_id)", "The keys of two runs must differ"),
    ('f"{info.workflow_id}/{info.activity_id}"', "a workflow id can be used again by a later run"),
    ('f"{info.workflow_run_id}/{info.activity_id}"', "Well done"),
]


def _cell(nb: object, needle: str) -> object:
    return next(c for c in nb.cells if c.cell_type == "code" and needle in c.source)  # type: ignore[attr-defined]


def test_each_wrong_key_gets_the_advice_that_fits_it(tmp_path: Path) -> None:
    tutorial = nbformat.read(TUTORIAL, as_version=4)
    exercise = next(c for c in tutorial.cells if "exercise" in c.metadata.get("tags", []))
    check = next(c for c in tutorial.cells if "check" in c.metadata.get("tags", []))
    setup = [
        "%config DurableLab.db_path = ':memory:'\n%reload_ext kernel_ext\n%engine --time skip",
        _cell(tutorial, "class Bank").source,  # type: ignore[attr-defined]
        _cell(tutorial, "class MoneyTransfer").source,  # type: ignore[attr-defined]
        "w1 = %worker start --task-queue money-transfer",
        _cell(tutorial, "def money_moved_once").source,  # type: ignore[attr-defined]
    ]
    trials = []
    for key, _ in KEYS:
        filled = re.sub(r"key = None  # Your code here.*", lambda _: f"key = {key}", exercise.source)
        assert filled != exercise.source or key == "None"
        trials += [filled, check.source]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in setup + trials]
    path = tmp_path / "keys.ipynb"
    nbformat.write(nb, path)
    done, _ = execute(path)
    errors = [o for c in done.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, [f"{o.ename}: {o.evalue}" for o in errors]
    answers = [stdout_of(cell) for cell in done.cells[len(setup) + 1 :: 2]]
    for (key, advice), answer in zip(KEYS, answers):
        assert advice in answer, f"key = {key}: the check answered {answer!r}"
