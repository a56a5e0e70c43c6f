"""Each exercise's check answers typical wrong answers with the hint that fits them.

For each notebook, one kernel runs the notebook as a learner gets it, then, for each wrong
answer below, the answer in place of the exercise cell and the exercise's check cell again.
The check must say "Not yet", and its answer must hold the phrase that names what is wrong
with that answer (not merely some hint). The solutions' "Well done" is tested in
``test_notebooks_execute.py``.
"""

from __future__ import annotations


import pytest

from tests.notebooks.exercise_answers import WRONG_ANSWERS
from tests.notebooks.test_notebooks_execute import NOTEBOOK_DIR, execute, notebooks, problems, tagged, verdict_of

nbformat = pytest.importorskip("nbformat")


def test_every_check_has_two_wrong_answers() -> None:
    for path in notebooks():
        nb = nbformat.read(path, as_version=4)
        for index, _ in enumerate(tagged(nb, "check")):
            answers = [a for a in WRONG_ANSWERS.get(path.name, []) if a.check == index]
            assert len(answers) >= 2, f"{path.name}: check {index} has {len(answers)} wrong answer(s) under test, need 2"


@pytest.mark.parametrize("name", sorted(WRONG_ANSWERS))
def test_wrong_answers_get_their_hint(name: str) -> None:
    path = next(NOTEBOOK_DIR.rglob(name))
    nb = nbformat.read(path, as_version=4)
    checks = tagged(nb, "check")
    answers = WRONG_ANSWERS[name]
    # A lesson's teardown (09 stops its Temporal dev server) runs after the wrong answers.
    teardown = tagged(nb, "teardown")
    nb.cells = [c for c in nb.cells if c not in teardown]
    for answer in answers:
        nb.cells.append(nbformat.v4.new_code_cell(answer.source))
        nb.cells.append(nbformat.v4.new_code_cell(checks[answer.check].source))
    nb.cells += teardown
    # Run in the lesson's folder, so relative paths (the crash lab's database folder) stay the same.
    done, _ = execute(path, nb, cwd=path.parent)
    found = problems(done)
    assert not found, "\n".join(found)
    said = [verdict_of(cell) for cell in done.cells[len(done.cells) - len(teardown) - 2 * len(answers) + 1 :: 2][: len(answers)]]
    for answer, verdict in zip(answers, said):
        assert "Not yet" in verdict, f"{answer.what}: the check said {verdict!r}"
        assert answer.phrase in verdict, f"{answer.what}: expected {answer.phrase!r} in {verdict!r}"
