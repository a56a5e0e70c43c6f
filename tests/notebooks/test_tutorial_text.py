"""The tutorials read as written: each links to the next, lists are numbered as rendered,
and no cell sits doing hidden work (issue 10, item 23)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.notebooks.test_notebooks_execute import NOTEBOOK_DIR, execute, stdout_of

nbformat = pytest.importorskip("nbformat")

TUTORIALS = sorted((NOTEBOOK_DIR / "tutorials").glob("[0-9][0-9]-*.ipynb"))


def _markdown(path: Path) -> list[str]:
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]


@pytest.mark.parametrize("path, following", list(zip(TUTORIALS, TUTORIALS[1:])), ids=lambda p: getattr(p, "name", ""))
def test_each_tutorial_links_to_the_next(path: Path, following: Path) -> None:
    link = f"[{following.name}]({following.name})"
    assert any(link in text for text in _markdown(path)), f"{path.name} has no link {link}"


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name)
def test_ordered_lists_are_numbered_as_a_renderer_shows_them(path: Path) -> None:
    # Markdown numbers items from the first one: "8." followed by "11." shows as "9.".
    for text in _markdown(path):
        numbers = [int(n) for n in re.findall(r"^(\d+)\. ", text, flags=re.M)]
        for before, after in zip(numbers, numbers[1:]):
            assert after in (before + 1, 1), f"{path.name}: item {after} follows item {before} in {text[:80]!r}"


def test_tutorial_06_does_not_replay_a_stuck_run_a_thousand_times() -> None:
    # Advancing the clock a day past a run whose workflow task keeps failing steps through
    # every retry (at most a minute apart), a replay each: 8-28 s of a cell with no output.
    path = NOTEBOOK_DIR / "tutorials" / "06-versioning.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("print(get_ipython().run_line_magic('worker', 'list'))"))
    done, _ = execute(path, nb)
    table = stdout_of(done.cells[-1])
    row = next(line.split() for line in table.splitlines() if line.startswith("w1 "))
    assert int(row[4]) < 50, f"worker w1 ran {row[4]} workflow tasks:\n{table}"
