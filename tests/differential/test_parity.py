"""docs/temporal-parity.md: temporalio's public API against ours, kept true (see parity.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytest.importorskip("temporalio")

from tests.differential import parity  # noqa: E402

FIX = "regenerate it: python -m tests.differential.parity --write (then read the diff)"


def test_the_parity_table_is_true() -> None:
    problems = parity.check(parity.DOC.read_text(encoding="utf-8"))
    assert not problems, "docs/temporal-parity.md: " + "; ".join(problems) + f". {FIX}"


def test_every_covered_row_points_at_a_test_that_uses_the_name() -> None:
    rows = parity.parse(parity.DOC.read_text(encoding="utf-8"))
    covered = [r for r in rows.values() if r.status == "covered"]
    assert covered, "the table claims nothing is covered"
    for row in covered:
        path, _, function = row.test.partition("::")
        source = (parity.ROOT / path).read_text(encoding="utf-8")
        if function:
            names = {n.name for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            assert function in names, f"{row.module}.{row.name}: {row.test} does not exist"
        assert row.test in parity.tests_using(row.module, row.name), f"{row.module}.{row.name}: {row.test} does not use it"


def _table_with(change: str, name: str) -> str:
    text = parity.DOC.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith(f"| `{name}` | covered |"))
    if change == "drop":
        del lines[index]
    else:
        cells = lines[index].split(" | ")
        cells[2] = "00000000"  # the shape temporalio had when the row was written
        lines[index] = " | ".join(cells)
    return "".join(lines)


def test_a_name_temporalio_gains_is_reported() -> None:
    problems = parity.check(_table_with("drop", "ActivityCancellationType"))
    assert "temporalio gained temporalio.workflow.ActivityCancellationType, which the table does not list" in problems


def test_a_covered_name_that_changes_shape_is_reported() -> None:
    problems = parity.check(_table_with("reshape", "ActivityCancellationType"))
    assert any("ActivityCancellationType is covered but temporalio changed its shape" in p for p in problems), problems


def test_a_missing_parameter_makes_a_name_partial() -> None:
    def theirs(name: str, *, task_queue: str, priority: int = 0) -> None: ...
    def ours_without(name: str, *, task_queue: str) -> None: ...
    def ours_with_kwargs(name: str, **options: object) -> None: ...

    assert parity.compare(theirs, ours_without) == ["parameters priority"]
    assert parity.compare(theirs, ours_with_kwargs) == []  # options it accepts by name


def test_a_missing_member_makes_a_class_partial() -> None:
    class Theirs:
        def __init__(self, id: str) -> None:
            self.id = id

        def cancel(self, reason: str) -> None: ...

        def describe(self) -> None: ...

    class Ours:
        def __init__(self, id: str) -> None:
            self.id = id

        def cancel(self) -> None: ...

    Theirs.__module__ = Ours.__module__ = "pkg.module"
    assert parity.compare(Theirs, Ours) == ["members describe", "cancel() parameters reason"]


def test_the_table_lists_every_module_of_the_switch_it_covers() -> None:
    from engine import temporalio_compat

    assert set(parity.MODULES) <= set(temporalio_compat.MODULES)
    text = parity.DOC.read_text(encoding="utf-8")
    for module in parity.MODULES:
        assert f"## `{module}`" in text
    assert Path(parity.DOC).name == "temporal-parity.md"
