"""One opt-in switch that runs a whole temporalio-written app on this engine.

``install()`` puts an importer first on ``sys.meta_path``: from then on ``import temporalio``,
``from temporalio import workflow, activity, client, worker, common, exceptions, converter,
testing`` and ``from temporalio.client import Client`` give the engine's objects under
temporalio's names (``MODULES`` lists which engine module each temporalio module maps onto).
``temporalio.client.Client.connect("localhost:7233")`` opens the engine's SQLite file instead
of a server (``target``). A name temporalio has and the engine does not fails where it is
used, with an error that names it and says it is not supported yet.

``dlab run app.py`` (``python -m engine.run``) runs a script with the switch on; ``%%workflow``
and ``%%activity`` cells run with it on (``mapped()``). See docs/temporalio.md.

Without the switch, the engine still accepts what the real temporalio's decorators made
(activities, handler methods, workflow classes): an app can keep real temporalio imported.
"""

from __future__ import annotations

import contextlib
import dis
import importlib
import importlib.abc
import importlib.machinery
import inspect
import os
import re
import sys
import types
from typing import Any, Callable, Iterator, Sequence

from engine._sandbox import temporalio_names as _temporalio_names

__all__ = ["install", "uninstall", "is_installed", "mapped", "missing_names", "on_missing", "target", "MODULES", "DB_ENV", "DEFAULT_DB"]

DB_ENV = "DLAB_DB"
DEFAULT_DB = ".durable/engine.db"  # the CLI's and the notebooks' default: `dlab workflow show` sees the runs
DOCS = "docs/temporalio.md"

# temporalio module -> the engine module whose public names (its __all__) it holds.
MODULES: dict[str, str] = {
    "temporalio.workflow": "engine.workflow",
    "temporalio.activity": "engine.activity",
    "temporalio.client": "engine.client",
    "temporalio.worker": "engine.worker",
    "temporalio.worker.workflow_sandbox": "engine.worker.workflow_sandbox",
    "temporalio.common": "engine.common",
    "temporalio.exceptions": "engine.errors",
    "temporalio.converter": "engine.converter",
    "temporalio.testing": "engine.testing",
    "temporalio.envconfig": "engine._compat.envconfig",
    "temporalio.api.common.v1": "engine.converter",
    "temporalio.contrib.pydantic": "engine.contrib.pydantic",  # needs pydantic
}
# Mapped modules that hold only some names of their engine module.
ONLY: dict[str, tuple[str, ...]] = {"temporalio.api.common.v1": ("Payload",)}
# Names that differ: temporalio module -> {temporalio's name: "engine.module:name"}.
RENAMED: dict[str, dict[str, str]] = {
    "temporalio.exceptions": {"TemporalError": "engine.errors:EngineError"},
    "temporalio.client": {"Client": "engine._compat.client:Client", "WorkflowHistory": "engine.history:History"},
}

# Connection options that mean nothing without a network: accepted and left out.
NETWORK_OPTIONS = frozenset({
    "tls", "api_key", "rpc_metadata", "lazy", "runtime", "retry_config", "keep_alive_config", "http_connect_proxy_config",
})
# A Temporal frontend address ("localhost:7233", "my-ns.tmprl.cloud:7233"), not a file.
_HOST_PORT = re.compile(r"^[A-Za-z0-9_.\-\[\]:]*:\d+$")


def target(target_host: str | None = None) -> str:
    """The engine database a temporalio-style target means: a ``host:port`` address (or
    nothing) is the file named by ``$DLAB_DB``, else ``.durable/engine.db``; a path or
    ``":memory:"`` is itself."""
    if target_host and not _HOST_PORT.match(target_host):
        return target_host
    path = os.environ.get(DB_ENV) or DEFAULT_DB
    if path != ":memory:" and os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def unsupported(module: str, name: str) -> str:
    _temporalio_names.record_missing(f"{module}.{name}")
    return (
        f"{module}.{name} is not supported by durable-lab's engine yet: with the temporalio switch on, "
        f"{module} maps onto {MODULES.get(module, 'nothing')}, which has no {name}. See {DOCS} for what is "
        "covered; run this part on a Temporal cluster, or rewrite it with the covered names."
    )


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``temporalio`` and its mapped modules; refuses its other modules by name."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "temporalio" and not fullname.startswith("temporalio."):
            return None
        if fullname not in MODULES and not _is_package(fullname):
            _temporalio_names.record_missing(fullname)
            raise ModuleNotFoundError(
                f"{fullname} is not supported by durable-lab's engine yet (the temporalio switch is on). Mapped "
                f"modules: {', '.join(sorted(MODULES))}; see {DOCS}.",
                name=fullname,
            )
        return importlib.machinery.ModuleSpec(fullname, self, is_package=_is_package(fullname))

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _build(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        pass  # built complete in create_module


def _is_package(name: str) -> bool:
    """``temporalio``, ``temporalio.worker``, ``temporalio.api``: a mapped module lies below."""
    return any(m.startswith(name + ".") for m in MODULES)


def _build(name: str) -> types.ModuleType:
    module = types.ModuleType(name, f"temporalio's names mapped onto durable-lab's engine ({DOCS}).")
    if name not in MODULES:  # a package that only holds mapped modules
        module.__dict__["__getattr__"] = _package_getattr(name)
        return module
    engine_module = importlib.import_module(MODULES[name])
    public = ONLY.get(name, getattr(engine_module, "__all__", ()))
    names = {n: getattr(engine_module, n) for n in public if hasattr(engine_module, n)}
    for theirs, where in RENAMED.get(name, {}).items():
        home, _, ours = where.partition(":")
        names[theirs] = getattr(importlib.import_module(home), ours)
    module.__dict__.update(names)
    module.__dict__["__all__"] = sorted(names)
    module.__dict__["__getattr__"] = _missing(name)
    return module


def _package_getattr(package: str) -> Any:
    def __getattr__(name: str) -> Any:  # noqa: N807 - PEP 562 module hook
        # `import temporalio; temporalio.workflow.defn`: load the mapped submodule on first use.
        full = f"{package}.{name}"
        if full in MODULES or _is_package(full):
            return importlib.import_module(full)
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(f"{full} is not supported by durable-lab's engine yet (see {DOCS}).")

    return __getattr__


_IMPORT_FROM = dis.opmap["IMPORT_FROM"]


def _missing(module: str) -> Any:
    def __getattr__(name: str) -> Any:  # noqa: N807 - PEP 562 module hook
        if name.startswith("__"):
            raise AttributeError(name)
        if f"{module}.{name}" in MODULES:  # temporalio.worker.workflow_sandbox
            return importlib.import_module(f"{module}.{name}")
        # `from temporalio.x import name` turns an AttributeError into a bare "cannot import
        # name"; an ImportError keeps our message. Elsewhere (hasattr) it must stay an AttributeError.
        caller = sys._getframe(1)
        if caller.f_code.co_code[caller.f_lasti] == _IMPORT_FROM:
            raise ImportError(unsupported(module, name), name=module)
        raise AttributeError(unsupported(module, name))

    return __getattr__


_finder = _Finder()
# The real temporalio's modules that install() took out of sys.modules, put back by uninstall().
_saved: dict[str, types.ModuleType] = {}


def install() -> None:
    """Map ``temporalio.*`` onto the engine for this process (idempotent). Modules of the
    real temporalio imported before stay with whoever holds them; new imports get ours."""
    if is_installed():
        return
    for name in [n for n in sys.modules if n == "temporalio" or n.startswith("temporalio.")]:
        _saved[name] = sys.modules.pop(name)
    sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    """Undo ``install()``: the real temporalio (if installed) is importable again."""
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    for name in [n for n in sys.modules if n == "temporalio" or n.startswith("temporalio.")]:
        del sys.modules[name]
    sys.modules.update(_saved)
    _saved.clear()


def missing_names() -> list[str]:
    """The temporalio names this process asked for that the engine lacks, in order, once
    each (inside workflow code too): what to implement, or avoid, for the app to run."""
    return list(dict.fromkeys(_temporalio_names.MISSING))


def on_missing(tell: Callable[[str], None]) -> None:
    """Call ``tell(name)`` the first time code asks for each temporalio name the engine
    lacks (``dlab run`` prints it: an activity that fails on one is retried, by default for
    ever, and the run would hang in silence)."""
    _temporalio_names.ON_MISSING.append(tell)


def is_installed() -> bool:
    return _finder in sys.meta_path


@contextlib.contextmanager
def mapped() -> Iterator[None]:
    """The switch on for a block (``%%workflow`` cells run in it), as it was afterwards."""
    if is_installed():
        yield
        return
    install()
    try:
        yield
    finally:
        uninstall()


def connect_options(options: dict[str, Any], accepted: Sequence[str]) -> dict[str, Any]:
    """``Client.connect``'s keyword options for the engine: network ones dropped, and one
    clear error for any the engine does not take."""
    kept = {k: v for k, v in options.items() if k not in NETWORK_OPTIONS}
    unknown = sorted(set(kept) - set(accepted))
    if unknown:
        raise TypeError(
            f"Client.connect({', '.join(f'{k}=...' for k in unknown)}) is not supported by durable-lab's engine yet "
            f"(it takes: {', '.join(accepted)}). See {DOCS}."
        )
    return kept


def engine_connect_parameters(connect: Any) -> list[str]:
    return [p.name for p in inspect.signature(connect).parameters.values() if p.kind is p.KEYWORD_ONLY]
