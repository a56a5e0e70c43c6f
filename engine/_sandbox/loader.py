"""The workflow sandbox's importer: one run's private copies of workflow modules.

A ``Sandbox`` gives one workflow run its own modules. The workflow's module, and the modules
of your own code it imports, run afresh inside it, so their globals belong to this run only.
Everything else passes through from the host process, loaded once and shared: the standard
library, installed packages, the engine itself, and what ``SandboxRestrictions.
passthrough_modules`` or ``workflow.unsafe.imports_passed_through()`` name. Sandboxed code gets
restricted *views* of modules with restricted members (``rules``), and stand-ins for
temporalio's workflow-facing modules (``temporalio_names``).

Only code the sandbox loads is affected: each module it runs has a ``__builtins__`` whose
``__import__`` is the sandbox's. ``sys.modules`` and ``builtins`` are never changed, so the
host, other threads and other runs see nothing of it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import importlib.machinery
import os
import sys
import types
from typing import Any, Iterable, Mapping, Sequence

from engine._sandbox import temporalio_names as _temporalio_names
from engine._runtime.definitions import compile_annotation
from engine._sandbox.rules import (
    RestrictedViews,
    SandboxRestrictions,
    loading,
    names_module,
    passing_through,
    unrestricted,
)
from engine.errors import RestrictedWorkflowAccessError

_running_loop = asyncio.events._get_running_loop
_INSTALLED = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")


class Kit:
    """What every sandbox of one runner shares: restrictions, views, compiled code."""

    def __init__(self, restrictions: SandboxRestrictions) -> None:
        self.restrictions = restrictions
        self.views = RestrictedViews(restrictions)
        self._code: dict[str, tuple[tuple[int, int], types.CodeType]] = {}
        self._temporalio: dict[str, types.ModuleType] | None = None
        # Modules that pass through by name, as sandboxed code sees them (views or the real ones).
        self.shared: dict[str, Any] = {}
        # The files whose stat was taken in the current iteration of the event loop `_stat_loop`.
        self._stated: set[str] = set()
        self._stat_loop: Any = None

    def code(self, name: str, origin: str) -> types.CodeType:
        """The compiled module, recompiled only when its file changed (checked by a stat).

        The stat is taken once per iteration of the running event loop: a worker that starts
        many runs from one claimed batch of tasks stats the file once for all of them, and a
        run that starts in a later iteration (after any ``await``) sees the file as it is then.
        Without a running asyncio loop every call stats the file."""
        cached = self._code.get(origin)
        if cached is not None and origin in self._stated and _running_loop() is self._stat_loop:
            return cached[1]
        stat = os.stat(origin)
        key = (stat.st_mtime_ns, stat.st_size)
        self._stated_now(origin)
        if cached is not None and cached[0] == key:
            return cached[1]
        code = importlib.machinery.SourceFileLoader(name, origin).get_code(name)
        if code is None:
            raise ImportError(f"No code in {origin}", name=name)
        self._code[origin] = (key, code)
        return code

    def _stated_now(self, origin: str) -> None:
        loop = _running_loop()
        # Only a real asyncio loop: a workflow instance is an event loop too, whose callbacks
        # are workflow code (and a loop that is not running would never clear the set).
        if not isinstance(loop, asyncio.BaseEventLoop):
            return
        if loop is not self._stat_loop or not self._stated:
            self._stated, self._stat_loop = set(), loop
            loop.call_soon(self._stated.clear)
        self._stated.add(origin)

    def temporalio(self) -> dict[str, types.ModuleType]:
        if self._temporalio is None:
            self._temporalio = _temporalio_names.build_modules()
        return self._temporalio


class Sandbox:
    """One run's modules. ``load_class``/``run_source`` build the run's workflow class."""

    def __init__(self, kit: Kit) -> None:
        self._kit = kit
        self._restrictions = kit.restrictions
        self.modules: dict[str, Any] = {}
        # The names loaded afresh here (a dict of strings: the cycle collector skips it).
        self._fresh: dict[str, None] = {}
        # Where each module run afresh here came from, and the code it ran (engine/_sandbox/reuse.py).
        self.sources: dict[str, tuple[str, types.CodeType]] = {}
        self.builtins = dict(kit.views.builtins)
        self.builtins["__import__"] = self._import

    @property
    def fresh(self) -> dict[str, None]:
        """The names of the modules run afresh in this sandbox."""
        return self._fresh

    # ------------------------------------------------------------------ entry points
    def load_class(self, module: str, qualname: str) -> Any:
        """Run ``module`` (and what it imports) afresh here; return its class ``qualname``.
        The workflow's own module is always run afresh, even where pass-through rules would
        share it: sharing it is what ``sandboxed=False`` is for."""
        token = loading.set(True)  # not a `with` block: this runs for every workflow run
        try:
            loaded = self.modules.get(module)
            if loaded is None:
                loaded = self.modules[module] = self._load(module, own=True)
            return _walk(loaded, qualname, module)
        finally:
            loading.reset(token)

    def run_source(self, code: types.CodeType, namespace: Mapping[str, Any]) -> dict[str, Any]:
        """Run ``code`` (a notebook cell, a class's source) in a copy of ``namespace`` whose
        restricted modules and members are replaced by their views; return the copy."""
        copy = self._kit.views.substitute(namespace)
        copy["__builtins__"] = self.builtins
        token = loading.set(True)
        try:
            exec(code, copy)
        finally:
            loading.reset(token)
        new = (copy[k] for k in code.co_names if k in copy and namespace.get(k) is not copy[k])
        _resolve_annotations(new, copy)
        return copy

    # ------------------------------------------------------------------ the import statement
    def _import(
        self,
        name: str,
        globals: Mapping[str, Any] | None = None,
        locals: Mapping[str, Any] | None = None,
        fromlist: Sequence[str] | None = (),
        level: int = 0,
    ) -> Any:
        absolute = _absolute(name, globals or {}, level) if level else name
        if not absolute:
            raise ValueError("Empty module name")
        module = self._module(absolute)
        if fromlist:
            self._handle_fromlist(module, absolute, fromlist)
            return module
        if level == 0:
            return self._module(absolute.partition(".")[0])
        if not name:
            return module
        # As importlib: `__import__("b.c", level=1)` from package a returns a.b.
        cut = len(name) - len(name.partition(".")[0])
        return self.modules[absolute[: len(absolute) - cut]]

    def _handle_fromlist(self, module: Any, name: str, fromlist: Iterable[str]) -> None:
        mapped = name in _temporalio_names.COVERED
        for item in fromlist:
            if item == "*":
                names = getattr(module, "__all__", None)
                if names is not None and hasattr(module, "__path__"):
                    self._handle_fromlist(module, name, [n for n in names if n != "*"])
                continue
            if hasattr(module, item):
                continue
            if mapped:
                raise ImportError(_temporalio_names.not_covered(name, item), name=name)
            if hasattr(module, "__path__"):
                child = f"{name}.{item}"
                try:
                    self._module(child)
                except ModuleNotFoundError as e:
                    if e.name != child:
                        raise  # an import inside the submodule failed: that is the error to show

    # ------------------------------------------------------------------ modules
    def _module(self, name: str) -> Any:
        module = self.modules.get(name)
        if module is not None:
            return module
        restrictions = self._restrictions
        if restrictions.invalid_modules and names_module(restrictions.invalid_modules, name) and not unrestricted.get():
            raise RestrictedWorkflowAccessError(
                f"Workflow code may not import {name!r}: SandboxRestrictions.invalid_modules lists it. "
                "Import it in an activity, or pass the worker a runner with other restrictions.",
                qualified_name=name,
            )
        if name == "temporalio" or name.startswith("temporalio."):
            module = self._temporalio(name)
        elif name in self._kit.shared:
            module = self._kit.shared[name]
        elif names_module(restrictions.passthrough_modules, name):
            module = self._kit.shared[name] = self._pass(name)
        elif restrictions.passthrough_all_modules or passing_through.get():
            module = self._pass(name)
        else:
            module = self._load(name)
        self.modules[name] = module
        return module

    def _pass(self, name: str) -> Any:
        """The host's module (imported there if needed), as a view if it has restricted members."""
        module = self._kit.views.module(importlib.import_module(name))
        parent_name, _, child = name.rpartition(".")
        if parent_name and module is not sys.modules.get(name):
            # A restricted child reached as an attribute of its parent must be the view too.
            parent = self._module(parent_name)
            if parent is not sys.modules.get(parent_name):
                setattr(parent, child, module)
        return module

    def _temporalio(self, name: str) -> Any:
        mapped = self._kit.temporalio()
        if name in mapped:
            return mapped[name]
        try:
            module = self._pass(name)  # temporalio.client and the like: the real package
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                f"No module named {name!r}: temporalio is not installed, and inside workflow code "
                f"only {', '.join(sorted(mapped))} map onto the engine (see {_temporalio_names.DOCS}).",
                name=name,
            ) from None
        setattr(mapped["temporalio"], name.rpartition(".")[2], module)
        return module

    def _load(self, name: str, own: bool = False) -> Any:
        """Run the module's source afresh in this sandbox, or pass it through when it is not
        your own Python source (a C extension, a frozen module, an installed package)."""
        parent_name, _, child = name.rpartition(".")
        search: Any = None
        if parent_name:
            parent = self._module(parent_name)
            if name in self.modules:  # the parent's __init__ imported it
                return self.modules[name]
            search = getattr(parent, "__path__", None)
            if search is None:
                raise ModuleNotFoundError(f"No module named {name!r}; {parent_name!r} is not a package", name=name)
        spec = _find_spec(name, search)
        if spec is None:
            return self._pass(name)  # raises ModuleNotFoundError, or finds what another finder serves
        origin = spec.origin
        locations = spec.submodule_search_locations
        namespace_package = origin in (None, "namespace") and locations is not None
        source = isinstance(origin, str) and spec.has_location and origin.endswith(".py")
        # Listed once: a namespace package's path is recomputed on each read.
        paths = list(locations) if locations is not None else None
        installed = any(part in str(p) for p in ([origin] if source else paths or ()) for part in _INSTALLED)
        if not (source or namespace_package) or (installed and not own and self._restrictions.passthrough_installed_packages):
            return self._pass(name)
        module = types.ModuleType(name)
        attrs = module.__dict__
        attrs.update(__spec__=spec, __loader__=spec.loader, __builtins__=self.builtins)
        if paths is not None:
            attrs["__path__"] = paths
        attrs["__package__"] = name if locations is not None else parent_name
        if source:
            attrs["__file__"] = origin
        self.modules[name] = module  # before running it: circular imports see the partial module
        self._fresh[name] = None
        if parent_name in self._fresh:
            setattr(self.modules[parent_name], child, module)
        if source:
            assert isinstance(origin, str)
            code = self._kit.code(name, origin)
            self.sources[name] = (origin, code)
            try:
                exec(code, attrs)
            except BaseException:
                del self.modules[name]
                raise
            _resolve_annotations((v for v in attrs.values() if isinstance(v, type) and v.__module__ == name), attrs)
        return module


def _find_spec(name: str, search: Any) -> Any:
    host = sys.modules.get(name)
    spec = getattr(host, "__spec__", None) if host is not None else None
    if spec is not None:
        return spec
    if host is not None:
        return None  # a module object put into sys.modules by hand: share it
    return importlib.machinery.PathFinder.find_spec(name, search)


def _absolute(name: str, globals: Mapping[str, Any], level: int) -> str:
    """The absolute name of a relative import (as ``importlib._bootstrap._resolve_name``)."""
    package = globals.get("__package__")
    if package is None:
        spec = globals.get("__spec__")
        if spec is not None:
            package = spec.parent
        else:
            module_name = str(globals.get("__name__", ""))
            package = module_name if "__path__" in globals else module_name.rpartition(".")[0]
    if not package:
        raise ImportError("attempted relative import with no known parent package")
    bits = package.rsplit(".", level - 1)
    if len(bits) < level:
        raise ImportError("attempted relative import beyond top-level package")
    return f"{bits[0]}.{name}" if name else bits[0]


def _walk(obj: Any, qualname: str, where: str) -> Any:
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AttributeError(f"{where} has no {qualname} when the sandbox runs it afresh") from None
    return obj


def _resolve_annotations(values: Iterable[Any], namespace: dict[str, Any]) -> None:
    """Evaluate the string annotations (``from __future__ import annotations``) of dataclasses
    defined in sandboxed code, in the sandbox's namespace. ``typing.get_type_hints``, which the
    data converter uses, would otherwise look them up in the host's module (via
    ``sys.modules``) and build the host's classes inside this run's objects."""
    for cls in values:
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            continue
        cls.__sandbox_fresh__ = True  # type: ignore[attr-defined]  # lives for one run: not for caches
        own = cls.__dict__.get("__annotations__")
        if not own or not any(isinstance(a, str) for a in own.values()):
            continue
        resolved = dict(own)
        local = dict(vars(cls))
        for key, text in own.items():
            code = compile_annotation(text) if isinstance(text, str) else None
            if code is not None:
                try:
                    resolved[key] = eval(code, namespace, local)  # noqa: S307 - the module's own annotation
                except Exception:  # noqa: BLE001 - unresolvable stays a string, as typing leaves it
                    pass
        cls.__annotations__ = resolved
