"""temporalio's public API against ours, name by name: the table in docs/temporal-parity.md.

    python -m tests.differential.parity --write     # regenerate the table (keeps valid test pointers)

For each public name of temporalio's workflow, activity, client, worker, testing, converter,
common and exceptions modules (their ``__all__``, else what the module itself defines), our
counterpart is what the temporalio switch maps it to (``engine.temporalio_compat``). A name is

* **covered** when we have it with temporalio's shape (a function or method takes all of its
  parameters, a class has all of its public members and constructor parameters, an enum all
  of its members) and a test of ours uses it (the ``test`` column points at one);
* **partial** when we have it with another shape (the notes say what is missing), or no test
  uses it yet;
* **not yet** when we do not have it.

``shape`` is a short hash of temporalio's own shape, so that a change on their side shows.
"""

from __future__ import annotations

import argparse
import ast
import enum
import hashlib
import importlib
import inspect
import re
import textwrap
import types
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "temporal-parity.md"
MODULES = [
    "temporalio.workflow", "temporalio.activity", "temporalio.client", "temporalio.worker", "temporalio.testing",
    "temporalio.converter", "temporalio.common", "temporalio.exceptions",
]
STATUSES = ("covered", "partial", "not yet")
# Members every class has (object's, Exception's, Enum's): not part of an API's shape.
_BASE_MEMBERS = set(dir(object)) | set(dir(Exception)) | {"name", "value"}


@dataclass
class Row:
    module: str
    name: str
    status: str
    shape: str
    notes: str
    test: str

    def line(self) -> str:
        return f"| `{self.name}` | {self.status} | {self.shape} | {self.notes} | {self.test} |"


def public_names(module: types.ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            n for n, v in vars(module).items()
            if not n.startswith("_") and not isinstance(v, types.ModuleType)
            and str(getattr(v, "__module__", "")).startswith(module.__name__)
        ]
    return sorted(n for n in set(names) if hasattr(module, n) and not isinstance(getattr(module, n), types.ModuleType))


def ours(module: str, name: str) -> Any:
    """What the temporalio switch gives for ``module.name``, or None."""
    from engine import temporalio_compat as compat

    renamed = compat.RENAMED.get(module, {})
    if name in renamed:
        home, _, attribute = renamed[name].partition(":")
        return getattr(importlib.import_module(home), attribute, None)
    if module not in compat.MODULES:
        return None
    engine_module = importlib.import_module(compat.MODULES[module])
    public = compat.ONLY.get(module, getattr(engine_module, "__all__", ()))
    return getattr(engine_module, name, None) if name in public else None


def _parameters(obj: Any) -> tuple[list[str], bool] | None:
    """Parameter names (without self/cls) and whether it takes ``**kwargs``; None without a signature."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    names = [p.name for p in signature.parameters.values() if p.name not in ("self", "cls")
             and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return names, any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())


def _members(cls: type) -> list[str]:
    """Public members the class's own package defines (not those of asyncio.Task, Exception...)."""
    if issubclass(cls, enum.Enum):
        return sorted(cls.__members__)
    package = cls.__module__.split(".")[0]
    own = [c for c in cls.__mro__ if c.__module__.split(".")[0] == package]
    names = {n for c in own for n in vars(c) if not n.startswith("_")}
    names |= {n for c in own for n in getattr(c, "__annotations__", {}) if not n.startswith("_")}
    return sorted(names - _BASE_MEMBERS)


@cache
def _instance_attributes(cls: type) -> frozenset[str]:
    """Names a class declares (annotations, slots) or its methods assign (``self.x = ...``):
    what an instance has even where the class itself has no such attribute."""
    names: set[str] = set()
    for c in cls.__mro__:
        names |= set(getattr(c, "__annotations__", {})) | set(getattr(c, "__slots__", ()))
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(c)))
        except (OSError, TypeError, SyntaxError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and isinstance(node.value, ast.Name) and node.value.id == "self":
                names.add(node.attr)
    return frozenset(names)


def shape(obj: Any) -> str:
    """temporalio's shape of a name, as text (hashed into the table's ``shape`` column)."""
    if inspect.isclass(obj):
        init = _parameters(obj.__init__) if "__init__" in vars(obj) or not issubclass(obj, enum.Enum) else None
        return f"class({', '.join(init[0]) if init else ''}) {' '.join(_members(obj))}"
    if callable(obj):
        params = _parameters(obj)
        return f"({', '.join(params[0])})" if params else "callable"
    return type(obj).__name__


def _missing_parameters(theirs: Any, ours_obj: Any) -> list[str]:
    t, o = _parameters(theirs), _parameters(ours_obj)
    if t is None or o is None:
        return []
    return [] if o[1] else [p for p in t[0] if p not in o[0]]


def compare(theirs: Any, ours_obj: Any) -> list[str]:
    """What our counterpart lacks of temporalio's shape (empty: the same shape)."""
    problems: list[str] = []
    if inspect.isclass(theirs):
        if not inspect.isclass(ours_obj):
            return [f"ours is a {type(ours_obj).__name__}, not a class"]
        lacking = [m for m in _members(theirs) if not hasattr(ours_obj, m) and m not in _instance_attributes(ours_obj)]
        if lacking:
            problems.append("members " + ", ".join(lacking[:8]) + (f" and {len(lacking) - 8} more" if len(lacking) > 8 else ""))
        if not issubclass(theirs, enum.Enum) and "__init__" in vars(theirs):
            params = _missing_parameters(theirs.__init__, ours_obj.__init__)
            if params:
                problems.append("constructor parameters " + ", ".join(params))
        for member in _members(theirs):
            theirs_member, ours_member = getattr(theirs, member, None), getattr(ours_obj, member, None)
            if callable(theirs_member) and callable(ours_member) and not inspect.isclass(theirs_member):
                params = _missing_parameters(theirs_member, ours_member)
                if params:
                    problems.append(f"{member}() parameters " + ", ".join(params))
    elif callable(theirs):
        if not callable(ours_obj):
            return [f"ours is a {type(ours_obj).__name__}, not callable"]
        params = _missing_parameters(theirs, ours_obj)
        if params:
            problems.append("parameters " + ", ".join(params))
    return problems


# ---------------------------------------------------------------- which tests use a name


@cache
def _usages() -> dict[tuple[str, str], list[str]]:
    """(module's last part, name) -> the tests that use it: ``path::test_function``, or ``path``."""
    found: dict[tuple[str, str], list[str]] = {}
    aliases = {"workflow", "activity", "client", "worker", "testing", "converter", "common", "exceptions", "errors"}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(("tests/samples/", "tests/differential/parity", "tests/differential/test_parity")):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for where, node in _walk_with_test(tree, relative):
            key: tuple[str, str] | None = None
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                key = (node.value.id, node.attr)
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("temporalio", "engine"):
                for alias in node.names:
                    found.setdefault((node.module.split(".")[-1], alias.name), []).append(where)
            if key is not None:
                found.setdefault(key, []).append(where)
    return found


def _walk_with_test(tree: ast.AST, relative: str) -> Iterator[tuple[str, ast.AST]]:
    is_test_file = Path(relative).name.startswith("test_")
    for top in ast.iter_child_nodes(tree):
        where = relative
        if is_test_file and isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef)) and top.name.startswith("test_"):
            where = f"{relative}::{top.name}"
        elif relative.startswith("tests/differential/"):
            where = "tests/differential/test_differential.py"  # workflows.py and drivers.py run in that suite
        for node in ast.walk(top):
            yield where, node


_ENGINE_ALIASES = {"temporalio.exceptions": ("exceptions", "errors")}


def tests_using(module: str, name: str) -> list[str]:
    # `from engine import Client, workflow` names them too
    parts = (*_ENGINE_ALIASES.get(module, (module.split(".")[-1],)), "engine")
    uses = [w for part in parts for w in _usages().get((part, name), [])]
    # a test function first, then a test file, then a helper module
    return sorted(set(uses), key=lambda w: ("::" not in w, "/test_" not in w, w))


def test_still_uses(pointer: str, module: str, name: str) -> bool:
    return pointer in tests_using(module, name)


# ---------------------------------------------------------------- the table


def compute(previous: dict[tuple[str, str], Row] | None = None) -> list[Row]:
    """Every row, from the installed temporalio and our engine; keeps a previous row's notes
    when they were written by hand (after ``--``) and its test pointer while it is still valid."""
    previous = previous or {}
    rows = []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in public_names(module):
            theirs = getattr(module, name)
            digest = hashlib.sha256(shape(theirs).encode()).hexdigest()[:8]
            mine = ours(module_name, name)
            old = previous.get((module_name, name))
            hand = old.notes.split(" -- ", 1)[1] if old and " -- " in old.notes else (old.notes[3:] if old and old.notes.startswith("-- ") else "")
            test = ""
            if mine is None:
                status, notes = "not yet", ""
            else:
                problems = compare(theirs, mine)
                users = tests_using(module_name, name)
                if old and old.test and old.test in users:
                    test = old.test
                elif users:
                    test = users[0]
                if problems:
                    status, notes = "partial", "lacks " + "; ".join(problems)
                elif not test:
                    status, notes = "partial", "no test uses it yet"
                else:
                    status, notes = "covered", ""
            notes = f"{notes} -- {hand}" if notes and hand else (f"-- {hand}" if hand else notes)
            rows.append(Row(module_name, name, status, digest, notes.replace("|", "\\|"), test))
    return rows


def render(rows: list[Row]) -> str:
    import temporalio

    out = [
        "# temporalio's API in durable-lab's engine",
        "",
        f"Every public name of temporalio {temporalio.__version__}'s modules below, and what the engine has of it",
        "through the temporalio switch ([temporalio.md](temporalio.md)). Generated by",
        "`python -m tests.differential.parity --write`; `tests/differential/test_parity.py` fails when a",
        "covered name changes shape, when temporalio gains a name this table does not list, or when the table",
        "is out of date. **covered**: the same shape (parameters, members) and a test of ours uses it (the",
        "`test` column); **partial**: present with another shape, or untested (notes); **not yet**: absent.",
        "`shape` is a hash of temporalio's own signature. Notes after `--` are written by hand and kept.",
        "",
        "| module | covered | partial | not yet |",
        "|---|---|---|---|",
    ]
    for module in MODULES:
        counts = [sum(1 for r in rows if r.module == module and r.status == s) for s in STATUSES]
        out.append(f"| `{module}` | {counts[0]} | {counts[1]} | {counts[2]} |")
    for module in MODULES:
        out += ["", f"## `{module}`", "", "| name | status | shape | notes | test |", "|---|---|---|---|---|"]
        out += [r.line() for r in rows if r.module == module]
    return "\n".join(out) + "\n"


_ROW = re.compile(r"^\| `([^`]+)` \| (covered|partial|not yet) \| (\w*) \| (.*) \| (.*) \|$")


def parse(text: str) -> dict[tuple[str, str], Row]:
    rows: dict[tuple[str, str], Row] = {}
    module = ""
    for line in text.splitlines():
        if line.startswith("## `"):
            module = line[4:].rstrip("`")
        match = _ROW.match(line)
        if match and module:
            name, status, digest, notes, test = match.groups()
            rows[(module, name)] = Row(module, name, status, digest, notes.strip(), test.strip())
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.differential.parity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    args = parser.parse_args()
    previous = parse(DOC.read_text(encoding="utf-8")) if DOC.exists() else {}
    text = render(compute(previous))
    if args.write:
        DOC.write_text(text, encoding="utf-8")
        print(f"wrote {DOC.relative_to(ROOT)}")
    else:
        print(text)


if __name__ == "__main__":
    main()


def check(committed: str) -> list[str]:
    """Why the committed table is wrong, one message each (empty: it is right)."""
    listed = parse(committed)
    rows = compute(listed)
    current = {(r.module, r.name): r for r in rows}
    problems = [
        f"temporalio gained {m}.{n}, which the table does not list" for (m, n) in current if (m, n) not in listed
    ]
    for key, row in listed.items():
        now = current.get(key)
        if row.status != "covered":
            continue
        if now is None:
            problems.append(f"{key[0]}.{key[1]} is listed as covered but temporalio no longer has it")
        elif now.shape != row.shape:
            problems.append(f"{key[0]}.{key[1]} is covered but temporalio changed its shape (was {row.shape}, now {now.shape})")
        elif now.status != "covered":
            problems.append(f"{key[0]}.{key[1]} is listed as covered but is now {now.status}: {now.notes}")
    if not problems and render(rows) != committed:
        problems.append("the table is out of date (a status, note or test pointer changed)")
    return problems
