"""docs/architecture.md stays true to the code: its picture is drawn from the current imports,
and it names every package of the engine and every table of the database."""

from __future__ import annotations

import importlib.util
import re
import sqlite3
from pathlib import Path

import pytest

pytest.importorskip("grimp")

REPO = Path(__file__).resolve().parent.parent
DOC = (REPO / "docs" / "architecture.md").read_text()


def _graph_script() -> object:
    spec = importlib.util.spec_from_file_location("architecture_graph", REPO / "docs" / "architecture_graph.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_picture_is_drawn_from_the_current_imports() -> None:
    stale = _graph_script().out_of_date()  # type: ignore[attr-defined]
    assert not stale, f"{', '.join(stale)} out of date with the code: run python docs/architecture_graph.py"


def test_the_doc_names_every_package_of_the_engine() -> None:
    engine = REPO / "engine"
    private = {p.name for p in engine.iterdir() if p.is_dir() and p.name.startswith("_") and (p / "__init__.py").exists()}
    public = {p.stem for p in engine.glob("*.py") if not p.stem.startswith("_")}
    public |= {p.name for p in engine.iterdir() if p.is_dir() and not p.name.startswith("_") and (p / "__init__.py").exists()}
    missing = sorted(f"engine/{name}/" for name in private if f"engine/{name}/" not in DOC)
    missing += sorted(f"engine.{name}" for name in public if f"engine.{name}" not in DOC)
    assert not missing, f"docs/architecture.md does not say what part of Temporal these play: {missing}"


def test_the_doc_names_every_table_of_the_database() -> None:
    from engine._persistence import schema

    conn = sqlite3.connect(":memory:")
    for statement in schema.SCHEMA + [m for version in sorted(schema.MIGRATIONS) for m in schema.MIGRATIONS[version]]:
        conn.execute(statement)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    described = set(re.findall(r"`([a-z_]+)`", DOC))
    assert tables - described == set(), f"tables docs/architecture.md does not describe: {sorted(tables - described)}"
