"""Find workflows and activities in a Python module or file, for ``dlab worker`` and queries."""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Sequence

from engine._runtime import user_exits as _user_exits
from engine._sandbox.translation import activity_methods
from engine.cli._errors import EXIT_FAILED, EXIT_USAGE, CliError


@dataclass(frozen=True)
class Definitions:
    source: str
    workflows: tuple[type, ...]
    activities: tuple[Callable[..., Any], ...]

    def workflow_names(self) -> list[str]:
        return [str(workflow_name(w)) for w in self.workflows]

    def activity_names(self) -> list[str]:
        return [str(activity_name(a)) for a in self.activities]


def workflow_name(value: Any) -> str | None:
    """The workflow type a class defines, decorated by the engine or by the real temporalio
    (the worker accepts both); None for anything else. vars(), not getattr: a subclass
    inherits its parent's definition attribute."""
    if not isinstance(value, type):
        return None
    defn = vars(value).get("__workflow_definition__") or vars(value).get("__temporal_workflow_definition")
    name = getattr(defn, "name", None)
    return name if isinstance(name, str) else None


def activity_name(value: Any) -> str | None:
    """The activity type a function defines (engine's or temporalio's decorator); else None."""
    if not callable(value) or isinstance(value, type):
        return None
    defn = getattr(value, "__activity_definition__", None) or getattr(value, "__temporal_activity_definition", None)
    name = getattr(defn, "name", None)
    return name if isinstance(name, str) else None


def add_source_options(parser: argparse.ArgumentParser, *, required: bool, purpose: str) -> None:
    group = parser.add_argument_group(f"workflow code ({purpose})")
    source = group.add_mutually_exclusive_group(required=required)
    source.add_argument("--module", "-m", metavar="MODULE", help="Import this module (e.g. myapp.workflows; the current folder is on the path).")
    source.add_argument("--file", "-f", metavar="PATH", help="Load this Python file (e.g. workflows.py).")


def import_module(module: str, what: str | None = None) -> ModuleType:
    """Import ``module`` with the current folder on the path, as ``python -m`` does; ``what``
    leads the error (and makes it a usage error) when the module is not found."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            raise CliError(
                f"{what or f'Cannot import module {module!r}'}: no module named {e.name!r} from {os.getcwd()}. Run dlab from "
                "the folder that holds the package, set PYTHONPATH" + ("." if what else ", or use --file path/to/file.py."),
                EXIT_USAGE if what else EXIT_FAILED,
            ) from None
        raise CliError(_import_failure(module, e)) from None
    except (Exception, SystemExit) as e:  # noqa: BLE001 - any error in user code at import time
        raise CliError(_import_failure(module, e)) from None


def load(module: str | None, file: str | None) -> ModuleType:
    """Import ``module`` (with the current folder on the path, as ``python -m`` does) or load
    ``file`` as a module registered in ``sys.modules`` (type hints and dataclasses need that)."""
    if module:
        return import_module(module)
    assert file is not None
    path = Path(file).expanduser().resolve()
    if not path.is_file():
        raise CliError(f"No Python file at {file!r}: give the path of a .py file that defines your workflows and activities.")
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # the file's own imports of its neighbours work
    name = path.stem
    spec = importlib.util.find_spec(name) if name.isidentifier() else None
    if spec is not None and spec.origin and Path(spec.origin).resolve() == path:
        return load(name, None)  # importable under its own name: one module, not two
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    name = f"dlab_file_{digest}_{''.join(c if c.isalnum() else '_' for c in path.stem)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CliError(f"Cannot load {file!r} as Python code: give a .py file.")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded
    try:
        spec.loader.exec_module(loaded)
    except (Exception, SystemExit) as e:  # noqa: BLE001 - a sys.exit() there must not end dlab silently
        del sys.modules[name]
        raise CliError(_import_failure(file, e)) from None
    return loaded


def _import_failure(what: str, error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return (
            f"Loading {what!r} raised {_user_exits.described(error)} at {_user_exits.where(error)}: "
            f"{_user_exits.hint(error)}. Fix the code and run the command again."
        )
    where = ""
    frames = traceback.extract_tb(error.__traceback__)
    if frames:
        last = frames[-1]
        where = f" at {last.filename}:{last.lineno}"
    return f"Loading {what!r} failed{where}: {type(error).__name__}: {error}. Fix the code and run the command again."


def definitions(module: str | None, file: str | None, *, workflows: Sequence[str] = (), activities: Sequence[str] = ()) -> Definitions:
    """Every ``@workflow.defn`` class and ``@activity.defn`` function of the module (those it
    imports too), or only the ones named (by type name or Python name)."""
    loaded = load(module, file)
    source = module or str(file)
    found_w: dict[str, type] = {}
    found_a: dict[str, Callable[..., Any]] = {}
    for attr, value in vars(loaded).items():
        if workflow_name(value) is not None:
            found_w.setdefault(attr, value)
        elif activity_name(value) is not None:
            found_a.setdefault(attr, value)
        else:
            # acts = TranslationActivities(session): its activity methods, bound to it.
            for method in activity_methods(value):
                found_a.setdefault(f"{attr}.{method.__name__}", method)
    chosen_w = _choose("workflow", found_w, workflows, source, lambda v: str(workflow_name(v)))
    chosen_a = _choose("activity", found_a, activities, source, lambda v: str(activity_name(v)))
    if not chosen_w and not chosen_a:
        raise CliError(
            f"{source!r} defines no @workflow.defn class and no @activity.defn function. Decorate them "
            "(from engine import workflow, activity), or point --module/--file at the module that defines them."
        )
    return Definitions(source, tuple(chosen_w), tuple(chosen_a))


def _choose(kind: str, found: dict[str, Any], wanted: Sequence[str], source: str, type_name: Callable[[Any], str]) -> list[Any]:
    unique: dict[int, Any] = {}
    for value in found.values():
        unique.setdefault(id(value), value)  # one object imported under two names counts once
    if not wanted:
        return list(unique.values())
    chosen: list[Any] = []
    for name in wanted:
        match = [v for attr, v in found.items() if name in (attr, type_name(v))]
        if not match:
            have = ", ".join(sorted({type_name(v) for v in unique.values()})) or "none"
            raise CliError(f"No {kind} named {name!r} in {source!r} (it has: {have}). Names are case-sensitive.")
        if match[0] not in chosen:
            chosen.append(match[0])
    return chosen
