"""Workflow runners: how a worker turns a registered workflow class into a running instance.

``UnsandboxedWorkflowRunner`` runs the class it was given. ``SandboxedWorkflowRunner`` builds,
for every instance (every run a worker takes up, and every replay), a fresh copy of the class
in a new ``Sandbox``: from its module file, or from the source that defined it (a notebook
cell registered with ``register_source``, else ``inspect.getsource``) run in a copy of the
namespace it was defined in. The copy's restricted calls raise while its code runs. A copy of
a module file that a finished run left exactly as loaded is lent to the next run instead
(``engine._sandbox.reuse``).
"""

from __future__ import annotations

import __future__
import ast
import contextvars
import functools
import inspect
import linecache
import sys
import types
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from engine._runtime import user_exits as _user_exits
from engine._runtime.definitions import WorkflowDefinition
from engine._runtime.info import WorkflowInfo
from engine._runtime.instance import WorkflowInstance
from engine._sandbox.loader import Kit, Sandbox
from engine._sandbox.reuse import Copy, CopyPool, state_of
from engine._sandbox.rules import SandboxRestrictions, loading
from engine.converter import DataConverter
from engine.errors import DefinitionError

# The recipes being loaded in this context: a load that starts loading itself again is a loop.
_building: contextvars.ContextVar[frozenset[tuple[str, str]]] = contextvars.ContextVar("sandbox_building", default=frozenset())

__all__ = ["WorkflowRunner", "UnsandboxedWorkflowRunner", "SandboxedWorkflowRunner", "register_source", "compile_definitions"]


class WorkflowRunner:
    """Base of the runners a ``Worker`` (``workflow_runner=``) or ``Replayer`` accepts."""

    def prepare_workflow(self, defn: WorkflowDefinition) -> None:
        """Check, when the worker is created, that instances of ``defn`` can be built."""

    def create_instance(
        self, defn: WorkflowDefinition, info: WorkflowInfo, data_converter: DataConverter | None = None
    ) -> WorkflowInstance:
        """A new instance of ``defn`` for the run ``info`` describes."""
        raise NotImplementedError


class UnsandboxedWorkflowRunner(WorkflowRunner):
    """Runs workflow classes as they are: no per-run isolation, no restricted calls. Use it for
    a whole worker (``Worker(..., workflow_runner=UnsandboxedWorkflowRunner())``);
    ``@workflow.defn(sandboxed=False)`` does the same for one class."""

    def create_instance(
        self, defn: WorkflowDefinition, info: WorkflowInfo, data_converter: DataConverter | None = None
    ) -> WorkflowInstance:
        instance = WorkflowInstance(defn, info, data_converter)  # type: ignore[abstract]  # only the loop methods workflows use
        instance.registered = defn
        return instance

    def __repr__(self) -> str:
        return "UnsandboxedWorkflowRunner()"


class SandboxedWorkflowRunner(WorkflowRunner):
    """Runs each workflow instance on its own fresh copy of the workflow's code, where calls
    that differ on replay (``time.time()``, ``random``, files, network, processes) raise
    ``RestrictedWorkflowAccessError``. A guard for determinism, not a security boundary."""

    def __init__(self, restrictions: SandboxRestrictions = SandboxRestrictions.default) -> None:
        if not isinstance(restrictions, SandboxRestrictions):
            raise TypeError(
                f"restrictions must be a SandboxRestrictions, got {type(restrictions).__name__}; start "
                "from SandboxRestrictions.default, e.g. SandboxRestrictions.default.with_passthrough_modules('mylib')."
            )
        self.restrictions = restrictions
        self._kit: Kit | None = None
        self._recipes: dict[int, tuple[WorkflowDefinition, _Recipe]] = {}
        # Module copies that finished runs gave back, and the modules whose state the check
        # cannot read (by recipe, with the code they were loaded from).
        self.copies = CopyPool()
        self._unreadable: dict[tuple[str, str], tuple[types.CodeType, ...]] = {}

    def __repr__(self) -> str:
        return f"SandboxedWorkflowRunner(restrictions={self.restrictions!r:.60}...)"

    @property
    def kit(self) -> Kit:
        if self._kit is None:
            self._kit = Kit(self.restrictions)
        return self._kit

    def prepare_workflow(self, defn: WorkflowDefinition) -> None:
        # A trial load, so that a broken import shows when the worker starts. Not while the
        # sandbox loads code: a script's `worker = Worker(...)` would load the script again.
        if not loading.get():
            self.fresh_definition(defn)

    def create_instance(
        self, defn: WorkflowDefinition, info: WorkflowInfo, data_converter: DataConverter | None = None
    ) -> WorkflowInstance:
        """An instance on a copy of the workflow's module: one a finished run left as it was
        loaded (``engine._sandbox.reuse``), else a fresh one."""
        recipe = self._recipe_of(defn)
        copy = self.copies.take(recipe.key, self.kit) if recipe.module is not None else None
        if copy is not None:
            fresh = copy.defn
        else:
            sandbox = Sandbox(self.kit)
            fresh = self._load(defn, recipe, sandbox)
            copy = self._lendable(recipe, sandbox, fresh)
        instance = WorkflowInstance(fresh, info, data_converter)  # type: ignore[abstract]
        instance.sandboxed = True
        instance.registered = defn
        if copy is not None:
            instance.on_evicted = copy.give_back
        return instance

    def _lendable(self, recipe: _Recipe, sandbox: Sandbox, fresh: WorkflowDefinition) -> Copy | None:
        """A copy to pool after its run, or None if its state cannot be checked (then the
        module's next loads are not checked either, until its code changes)."""
        if recipe.module is None:
            return None
        codes = tuple(code for _, code in sandbox.sources.values())
        if self._unreadable.get(recipe.key) == codes:
            return None
        try:
            state = state_of(sandbox)
        except Exception:  # noqa: BLE001 - an object that will not be read: not pooled
            state = None
        if state is None:
            self._unreadable[recipe.key] = codes
            return None
        return Copy(recipe.key, sandbox, fresh, state, self.copies)

    def _recipe_of(self, defn: WorkflowDefinition) -> _Recipe:
        entry = self._recipes.get(id(defn))
        if entry is None or entry[0] is not defn:
            entry = (defn, _recipe(defn.cls, defn.run_fn.__globals__))
            self._recipes[id(defn)] = entry
        return entry[1]

    def fresh_definition(self, defn: WorkflowDefinition) -> WorkflowDefinition:
        """The definition of a fresh copy of ``defn``'s class, built in a new sandbox."""
        return self._load(defn, self._recipe_of(defn), Sandbox(self.kit))

    def _load(self, defn: WorkflowDefinition, recipe: _Recipe, sandbox: Sandbox) -> WorkflowDefinition:
        building = _building.get()
        if recipe.key in building:
            raise DefinitionError(
                f"Running {recipe.where} in the sandbox for workflow {defn.name!r} started another run of the "
                "same code: a top-level statement there runs workflows (a Replayer or a client call). Move it "
                "into a function or under `if __name__ == \"__main__\":`; the sandbox re-runs definitions only."
            )
        token = _building.set(building | {recipe.key})
        try:
            cls = recipe.load(sandbox)
        except Exception:
            raise
        except BaseException as e:  # noqa: BLE001 - SystemExit and the like would end the worker
            raise DefinitionError(
                f"Running {recipe.where} in the sandbox for workflow {defn.name!r} raised {_user_exits.described(e)} "
                f"at {_user_exits.where(e)}: {_user_exits.hint(e)}. Code at the top level of a workflow's module "
                "runs again for every run; it must only define things."
            ) from None
        finally:
            _building.reset(token)
        fresh = cls.__dict__.get("__workflow_definition__") if isinstance(cls, type) else None
        if fresh is None or fresh.name != defn.name:
            raise DefinitionError(
                f"The sandbox ran {recipe.where} afresh for workflow {defn.name!r}, but {recipe.qualname} there "
                f"is {'a workflow named ' + repr(fresh.name) if fresh else 'not a @workflow.defn class'}. "
                "Define the class at the top level of its module, unconditionally."
            )
        return fresh


# ---------------------------------------------------------------------- recipes
@dataclass(frozen=True)
class _Recipe:
    """How to build a fresh copy of a class in a sandbox."""

    qualname: str
    where: str
    module: str | None = None
    code: types.CodeType | None = None
    namespace: Mapping[str, Any] | None = None

    @functools.cached_property
    def key(self) -> tuple[str, str]:
        return (self.module or self.where, self.qualname)

    def load(self, sandbox: Sandbox) -> Any:
        if self.module is not None:
            return sandbox.load_class(self.module, self.qualname)
        assert self.code is not None and self.namespace is not None
        found: Any = sandbox.run_source(self.code, self.namespace)
        for part in self.qualname.split("."):
            found = found.get(part) if isinstance(found, dict) else getattr(found, part, None)
        if found is None:
            raise DefinitionError(f"Running {self.where} in the sandbox defined no {self.qualname}.")
        return found


@dataclass(frozen=True)
class _Source:
    code: types.CodeType
    namespace: Mapping[str, Any]


def compile_definitions(source: str, filename: str, flags: int = 0) -> types.CodeType:
    """The definitions in ``source``, compiled: what the sandbox re-runs for each run of a
    script's or a notebook cell's workflow. Imports, classes, functions and assignments are
    kept, also inside ``if``/``try``/``with``; everything else is dropped: expression
    statements (a print, a magic, ``asyncio.run(main())``, ``sys.path.insert(...)``), loops,
    statements with a top-level ``await``, and ``if __name__ == "__main__":`` blocks. Line
    numbers stay the source's."""
    tree = ast.parse(source, filename)
    tree.body = _definitions(tree.body)
    return compile(ast.fix_missing_locations(tree), filename, "exec", flags, dont_inherit=True)


_KEPT = (ast.Import, ast.ImportFrom, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef, ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Pass)


def _definitions(body: list[ast.stmt]) -> list[ast.stmt]:
    kept: list[ast.stmt] = []
    for node in body:
        if _is_main_guard(node):
            continue
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and any(isinstance(n, ast.Await) for n in ast.walk(node)):
            continue
        if isinstance(node, _KEPT):
            kept.append(node)
        elif isinstance(node, (ast.If, ast.With)):
            node.body = _definitions(node.body) or [ast.copy_location(ast.Pass(), node)]
            if isinstance(node, ast.If):
                node.orelse = _definitions(node.orelse)
            kept.append(node)
        elif isinstance(node, (ast.Try, ast.TryStar)):
            node.body = _definitions(node.body) or [ast.copy_location(ast.Pass(), node)]
            for handler in node.handlers:
                handler.body = _definitions(handler.body) or [ast.copy_location(ast.Pass(), handler)]
            node.orelse = _definitions(node.orelse)
            node.finalbody = _definitions(node.finalbody)
            kept.append(node)
    return kept


def _is_main_guard(node: ast.stmt) -> bool:
    match node:
        case ast.If(test=ast.Compare(left=ast.Name(id="__name__"), ops=[ast.Eq()], comparators=[ast.Constant(value="__main__")])):
            return True
    return False


def register_source(
    classes: Iterable[type], source: str, filename: str, namespace: Mapping[str, Any], flags: int = 0
) -> None:
    """Tell the sandbox that ``classes`` were defined by running ``source`` in ``namespace``
    (a notebook cell in the user's namespace). Each run then re-runs the source's definitions
    (``compile_definitions``) in a copy of ``namespace``: the names the source defines are the
    run's own, other names are shared. kernel_ext calls it for ``%%workflow`` cells; without
    it the sandbox finds the source of ``__main__`` classes through ``linecache``."""
    recorded = _Source(compile_definitions(source, filename, flags), namespace)
    for cls in classes:
        type.__setattr__(cls, "__sandbox_source__", recorded)


def _recipe(cls: type, globals_: Mapping[str, Any]) -> _Recipe:
    host = cls.__dict__.get("__engine_host_class__", cls)  # a translated temporalio class
    registered = host.__dict__.get("__sandbox_source__")
    if isinstance(registered, _Source):
        return _Recipe(host.__qualname__, f"the cell that defined {host.__qualname__}", code=registered.code, namespace=registered.namespace)
    if "<locals>" in host.__qualname__:
        raise DefinitionError(
            f"Workflow class {host.__qualname__} is defined inside a function: the sandbox builds each run "
            "afresh from the class's module and cannot reach it there. Move the class to the top level of "
            "its module, or run it unsandboxed: @workflow.defn(sandboxed=False) or "
            "Worker(..., workflow_runner=UnsandboxedWorkflowRunner())."
        )
    module = sys.modules.get(host.__module__)
    origin = getattr(getattr(module, "__spec__", None), "origin", None) or getattr(module, "__file__", None)
    if host.__module__ != "__main__" and isinstance(origin, str) and origin.endswith(".py"):
        return _Recipe(host.__qualname__, f"module {host.__module__}", module=host.__module__)
    # A script's __main__ (importing it again would run the script) or a notebook cell: re-run
    # the definitions of the file or cell that defined the class, in a copy of its namespace.
    methods = [f for f in vars(host).values() if inspect.isfunction(f)]
    filename = methods[0].__code__.co_filename if methods else str(globals_.get("__file__", ""))
    lines = linecache.getlines(filename, dict(globals_)) if filename else []
    if not lines:
        raise DefinitionError(
            f"The sandbox cannot find the source of workflow class {host.__qualname__} (defined in "
            f"{filename or 'no file'}); it builds each run afresh from the source. Define the class in a "
            "module file or a %%workflow cell, or run it unsandboxed: @workflow.defn(sandboxed=False)."
        )
    # Keep the source's `from __future__ import annotations`, and only that.
    flags = __future__.annotations.compiler_flag if globals_.get("annotations") is __future__.annotations else 0
    code = compile_definitions("".join(lines), filename, flags)
    return _Recipe(host.__qualname__, f"the definitions in {filename}", code=code, namespace=globals_)


def translated_definition(cls: type) -> WorkflowDefinition | None:
    """Our definition of a class decorated with temporalio's ``@workflow.defn``: its code is
    loaded in a sandbox, where ``temporalio.workflow`` and friends are the engine's modules."""
    cached = cls.__dict__.get("__engine_translation__")
    if isinstance(cached, WorkflowDefinition):
        return cached
    run = next((f for f in vars(cls).values() if inspect.isfunction(f)), None)
    globals_ = run.__globals__ if run is not None else vars(sys.modules.get(cls.__module__, types.ModuleType("?")))
    fresh = _recipe(cls, globals_).load(Sandbox(SandboxedWorkflowRunner().kit))
    defn = fresh.__dict__.get("__workflow_definition__") if isinstance(fresh, type) else None
    if defn is None:
        return None
    type.__setattr__(fresh, "__engine_host_class__", cls)
    type.__setattr__(cls, "__engine_translation__", defn)
    return defn
