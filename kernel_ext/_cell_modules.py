"""``%%activity --module NAME`` / ``%%workflow --module NAME``: a cell importable as a module.

Course code imports its activities by module name (``from activities import
TranslationActivities``), also from workflow code inside
``workflow.unsafe.imports_passed_through()``. A cell's definitions live in the notebook's
namespace, so such an import fails; with ``--module`` the cell's top-level names are also put
into ``sys.modules[NAME]``. The module has no spec, so the workflow sandbox shares it (as it
shares any module put into ``sys.modules`` by hand) instead of looking for a file to re-run.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
import types
from typing import Any, Mapping

from IPython.core.error import UsageError

_MARK = "__durable_lab_cell__"


def module_option(line: str, magic: str, usage: str) -> str | None:
    """The NAME of ``--module NAME`` (or ``-m NAME``, ``--module=NAME``), None without it."""
    try:
        words = shlex.split(line)
    except ValueError as e:
        raise UsageError(f"{magic}: cannot read {line.strip()!r} ({e}).\n{usage}") from None
    if not words:
        return None
    if len(words) == 1 and words[0].startswith("--module="):
        words = ["--module", words[0].partition("=")[2]]
    if len(words) != 2 or words[0] not in ("--module", "-m"):
        raise UsageError(f"{magic} takes only --module NAME, got {line.strip()!r}.\n{usage}")
    name = words[1]
    if not all(part.isidentifier() for part in name.split(".")):
        raise UsageError(f"{magic} --module {name!r}: a module name is dotted Python identifiers (e.g. activities).\n{usage}")
    existing = sys.modules.get(name)
    if existing is not None and not getattr(existing, _MARK, False):
        raise UsageError(f"{magic} --module {name}: that would hide the imported module {name!r}; pick another name.\n{usage}")
    if existing is None and _installed(name):
        raise UsageError(f"{magic} --module {name}: that would hide the installed module {name!r}; pick another name.\n{usage}")
    return name


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def install(name: str, names: Mapping[str, Any]) -> types.ModuleType:
    """``sys.modules[name]`` holding ``names`` (replacing the cell's previous module). A
    dotted name's parents are made too, when no module has their names."""
    module = types.ModuleType(name, f"Definitions of a notebook cell (%%... --module {name}).")
    module.__dict__.update(names)
    setattr(module, _MARK, True)
    sys.modules[name] = module
    parent_name, _, child = name.rpartition(".")
    if parent_name:
        parent = sys.modules.get(parent_name)
        if parent is None:
            parent = install(parent_name, {})
            parent.__path__ = []  # a package, so `import parent.child` finds the child
        setattr(parent, child, module)
    return module


def for_process(cell: str, name: str) -> str:
    """The cell's source for a worker process (``%worker start --process``), which runs every
    definition cell as one module: followed by lines that make that module importable as
    ``name`` too, so a later cell's ``from name import ...`` works there as well. ``setdefault``:
    the workflow sandbox re-runs the module for each run, and must not replace the host's."""
    parts = name.split(".")
    lines = [cell.rstrip(), "", f"# durable-lab: this cell is also module {name!r} (%%... --module {name})"]
    lines.append("import sys as _durable_lab_sys, types as _durable_lab_types")
    for depth in range(1, len(parts)):
        parent = ".".join(parts[:depth])
        lines.append(f"_durable_lab_sys.modules.setdefault({parent!r}, _durable_lab_types.ModuleType({parent!r})).__dict__.setdefault('__path__', [])")
    lines.append(f"_durable_lab_sys.modules.setdefault({name!r}, _durable_lab_sys.modules[__name__])")
    return "\n".join(lines) + "\n"
