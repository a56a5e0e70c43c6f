"""What the workflow sandbox forbids, and the guarded stand-ins that enforce it.

Sandboxed workflow code never holds the real ``time.time`` or ``datetime.datetime``: the
sandbox's importer gives it *views* of restricted modules, copies of the module whose
restricted members are replaced by stand-ins. A stand-in checks, when it is called, whether a
sandboxed workflow instance is running (the running event loop is one). If so it raises
``RestrictedWorkflowAccessError``; anywhere else (module-level code while the sandbox loads a
module, an activity thread) it calls the original. Nothing is patched globally and nothing
runs per activation: the cost is paid only by calls to restricted members.
"""

from __future__ import annotations

import asyncio
import builtins
import contextvars
import dataclasses
import inspect
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

from engine.errors import RestrictedWorkflowAccessError

# workflow.unsafe.sandbox_unrestricted() sets it; a ContextVar, so the permission stays with
# the asyncio task (one workflow's coroutine) that asked for it.
unrestricted: contextvars.ContextVar[bool] = contextvars.ContextVar("sandbox_unrestricted", default=False)
# workflow.unsafe.imports_passed_through() sets it; read by the sandbox's importer.
passing_through: contextvars.ContextVar[bool] = contextvars.ContextVar("imports_passed_through", default=False)
# True while the sandbox runs the module-level code of workflow modules.
loading: contextvars.ContextVar[bool] = contextvars.ContextVar("sandbox_loading", default=False)

_running_loop = asyncio.events._get_running_loop


@dataclass(frozen=True)
class Restriction:
    """Why a call is not allowed in workflow code, and what to do instead.

    With ``min_args``, the call is allowed when given at least that many arguments
    (``time.localtime(secs)`` is deterministic, ``time.localtime()`` reads the clock)."""

    why: str
    instead: str
    min_args: int = 0

    def message(self, qualified_name: str) -> str:
        return f"{qualified_name}() is not allowed in workflow code: {self.why}. {self.instead}"


_CLOCK = Restriction("it differs on replay", "Use workflow.time() / workflow.now().")
_CLOCK_NOW = Restriction("it differs on replay", "Use workflow.now().")
_CLOCK_DEFAULT = Restriction(
    "without a time argument it reads the clock, which differs on replay",
    "Pass the workflow's time, e.g. time.localtime(workflow.time()).",
    min_args=1,
)
_SLEEP = Restriction(
    "it blocks the worker and is not durable",
    "Use `await workflow.sleep(seconds)` (or asyncio.sleep), a durable timer.",
)
_RANDOM = Restriction(
    "it draws from a generator that differs between runs and on replay",
    "Use workflow.random(), a random.Random seeded per run (e.g. workflow.random().randint(1, 6)).",
)
_UUID = Restriction("it is random, so it differs on replay", "Use workflow.uuid4(), the same on replay.")
_FILES = Restriction(
    "files can change between a run and its replay",
    "Read or write files in an activity and pass the data to the workflow.",
)
_WORKER = Restriction(
    "it depends on the worker process that runs the task",
    "Pass the value in as workflow input, or read it in an activity.",
)
_NETWORK = Restriction(
    "network I/O is not replayed: a replay would call again and may get another answer",
    "Do network calls in an activity (workflow.execute_activity).",
)
_PROCESS = Restriction(
    "a program's effects and output are not replayed",
    "Run programs in an activity (workflow.execute_activity).",
)
_THREADS = Restriction(
    "workflow code runs on one thread, step by step with its history",
    "Use asyncio tasks for concurrency inside a workflow; run blocking work in an activity.",
)
_INPUT = Restriction(
    "workflow code cannot wait for a person at a keyboard",
    "Wait for a signal instead (@workflow.signal with workflow.wait_condition).",
)


def _table(rule: Restriction, *names: str) -> dict[str, Restriction]:
    return {name: rule for name in names}


_RANDOM_FUNCTIONS = (
    "betavariate", "binomialvariate", "choice", "choices", "expovariate", "gammavariate", "gauss",
    "getrandbits", "getstate", "lognormvariate", "normalvariate", "paretovariate", "randbytes",
    "randint", "random", "randrange", "sample", "seed", "setstate", "shuffle", "triangular",
    "uniform", "vonmisesvariate", "weibullvariate", "SystemRandom",
)

# module -> {member path: restriction}. A member path is an attribute of the module, or
# "Class.classmethod". Members missing from this Python version are skipped.
_DEFAULT_MEMBERS: dict[str, dict[str, Restriction]] = {
    "time": {
        **_table(_CLOCK, "time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns",
                 "process_time", "process_time_ns", "thread_time", "thread_time_ns"),
        **_table(_CLOCK_DEFAULT, "localtime", "gmtime", "ctime", "asctime"),
        "strftime": dataclasses.replace(
            _CLOCK_DEFAULT, min_args=2, instead="Pass the workflow's time, e.g. time.strftime(fmt, time.gmtime(workflow.time()))."
        ),
        "sleep": _SLEEP,
    },
    "datetime": _table(_CLOCK_NOW, "datetime.now", "datetime.utcnow", "datetime.today", "date.today"),
    "random": _table(_RANDOM, *_RANDOM_FUNCTIONS),
    "secrets": _table(_RANDOM, "token_bytes", "token_hex", "token_urlsafe", "choice", "randbelow", "randbits", "SystemRandom"),
    "uuid": _table(_UUID, "uuid1", "uuid4"),
    "builtins": {"open": _FILES, "input": _INPUT},
    "io": {"open": _FILES},
    "os": {
        "urandom": _RANDOM,
        **_table(_WORKER, "getenv", "getpid", "getcwd", "cpu_count"),
        **_table(_FILES, "open", "listdir", "scandir", "walk", "stat", "remove", "unlink", "rename", "replace",
                 "mkdir", "makedirs", "rmdir"),
        **_table(_PROCESS, "system", "popen", "fork", "kill"),
    },
    "shutil": _table(_FILES, "copy", "copy2", "copyfile", "copytree", "move", "rmtree", "which"),
    "glob": _table(_FILES, "glob", "iglob"),
    "tempfile": _table(_FILES, "mkstemp", "mkdtemp", "NamedTemporaryFile", "TemporaryFile", "TemporaryDirectory"),
    "socket": _table(_NETWORK, "socket", "create_connection", "create_server", "socketpair", "fromfd",
                     "getaddrinfo", "gethostbyname", "gethostname"),
    "urllib.request": _table(_NETWORK, "urlopen", "urlretrieve"),
    "http.client": _table(_NETWORK, "HTTPConnection", "HTTPSConnection"),
    "subprocess": _table(_PROCESS, "run", "Popen", "call", "check_call", "check_output", "getoutput", "getstatusoutput"),
    "multiprocessing": _table(_PROCESS, "Process", "Pool"),
    "threading": _table(_THREADS, "Thread", "Timer"),
    "concurrent.futures": _table(_THREADS, "ThreadPoolExecutor", "ProcessPoolExecutor"),
}


@dataclass(frozen=True)
class SandboxRestrictions:
    """What sandboxed workflow code may import and call (mirrors temporalio's class of that name).

    - ``passthrough_modules``: modules (and their submodules) imported once, outside the
      sandbox, and shared by every run, instead of being loaded afresh for each run.
    - ``invalid_modules``: modules workflow code may not import at all.
    - ``invalid_module_members``: ``{module: {member: Restriction}}``, the calls that raise
      ``RestrictedWorkflowAccessError`` while workflow code runs.
    - ``passthrough_all_modules``: share every module the workflow's module imports (only the
      workflow's module itself is run afresh per run; calls are still checked).
    - ``passthrough_installed_packages``: modules installed in site-packages pass through
      (temporalio reloads them per run; here only your own code is reloaded).
    """

    passthrough_modules: frozenset[str]
    invalid_modules: frozenset[str] = frozenset()
    invalid_module_members: Mapping[str, Mapping[str, Restriction]] = field(default_factory=dict)
    passthrough_all_modules: bool = False
    passthrough_installed_packages: bool = True

    default: ClassVar[SandboxRestrictions]
    passthrough_modules_default: ClassVar[frozenset[str]]
    invalid_module_members_default: ClassVar[Mapping[str, Mapping[str, Restriction]]]

    def __post_init__(self) -> None:
        problems = [
            f"{what} must hold module names (non-empty strings), got {name!r}"
            for what, names in (("passthrough_modules", self.passthrough_modules), ("invalid_modules", self.invalid_modules))
            for name in names
            if not isinstance(name, str) or not name
        ]
        for module, members in self.invalid_module_members.items():
            for member, rule in members.items():
                if not isinstance(rule, Restriction):
                    problems.append(f"invalid_module_members[{module!r}][{member!r}] must be a Restriction, got {rule!r}")
        if problems:
            raise ValueError("Invalid SandboxRestrictions: " + "; ".join(problems) + ".")
        object.__setattr__(self, "passthrough_modules", frozenset(self.passthrough_modules))
        object.__setattr__(self, "invalid_modules", frozenset(self.invalid_modules))

    def with_passthrough_modules(self, *modules: str) -> SandboxRestrictions:
        """A copy where ``modules`` (and their submodules) pass through too."""
        return dataclasses.replace(self, passthrough_modules=self.passthrough_modules | set(modules))

    def with_passthrough_all_modules(self) -> SandboxRestrictions:
        """A copy that shares every module the workflow's module imports (calls are still checked)."""
        return dataclasses.replace(self, passthrough_all_modules=True)


def names_module(names: frozenset[str], module: str) -> bool:
    """True if ``module`` or one of its parent packages is in ``names``."""
    if module in names:
        return True
    dot = module.find(".")
    while dot != -1:
        if module[:dot] in names:
            return True
        dot = module.find(".", dot + 1)
    return False


SandboxRestrictions.passthrough_modules_default = frozenset(sys.stdlib_module_names) | {"engine", "kernel_ext"}
SandboxRestrictions.invalid_module_members_default = types.MappingProxyType(
    {module: types.MappingProxyType(members) for module, members in _DEFAULT_MEMBERS.items()}
)
SandboxRestrictions.default = SandboxRestrictions(
    passthrough_modules=SandboxRestrictions.passthrough_modules_default,
    invalid_module_members=SandboxRestrictions.invalid_module_members_default,
)


# ---------------------------------------------------------------------- enforcing
def _check(qualified_name: str, rule: Restriction, n_args: int) -> None:
    loop: Any = _running_loop()
    if loop is None or not getattr(loop, "sandboxed", False) or unrestricted.get():
        return
    if rule.min_args and n_args >= rule.min_args:
        return
    from engine._runtime.code_lines import user_code_line

    line = user_code_line()
    message = rule.message(qualified_name)
    if line is not None:
        message += f" Called at {line}."
    message += " Deliberate and harmless here? Wrap it in `with workflow.unsafe.sandbox_unrestricted():`."
    error = RestrictedWorkflowAccessError(message, qualified_name=qualified_name, code_line=str(line or ""))
    # Recorded on the instance too, so `except Exception` in workflow code cannot hide it.
    loop.fail_task(error)
    raise error


def guard_function(qualified_name: str, original: Callable[..., Any], rule: Restriction) -> Callable[..., Any]:
    """A function that checks, then calls ``original``."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check(qualified_name, rule, len(args) + len(kwargs))
        return original(*args, **kwargs)

    for attr in ("__name__", "__qualname__", "__doc__", "__module__"):
        try:
            setattr(guarded, attr, getattr(original, attr))
        except (AttributeError, TypeError):
            pass
    guarded.__wrapped__ = original  # type: ignore[attr-defined]  # inspect.signature follows it
    guarded.__sandbox_original__ = original  # type: ignore[attr-defined]
    return guarded


def guard_class(qualified_name: str, original: type, on_call: Restriction | None, methods: Mapping[str, Restriction]) -> type:
    """A stand-in for a class: a subclass of ``original`` whose metaclass makes
    ``isinstance``/``issubclass`` answer as for ``original`` and whose construction returns
    plain ``original`` instances (checked first if ``on_call``). Listed class methods and
    static methods are checked. ``class Mine(Standin)`` still works (and is checked too)."""
    base_meta = type(original)
    facade: type

    def __call__(cls: type, *args: Any, **kwargs: Any) -> Any:  # noqa: N807 - metaclass protocol
        if on_call is not None:
            _check(qualified_name, on_call, len(args) + len(kwargs))
        if cls is facade:
            return original(*args, **kwargs)
        return base_meta.__call__(cls, *args, **kwargs)

    def __instancecheck__(cls: type, obj: Any) -> bool:  # noqa: N807
        return isinstance(obj, original) if cls is facade else base_meta.__instancecheck__(cls, obj)

    def __subclasscheck__(cls: type, sub: type) -> bool:  # noqa: N807
        return issubclass(sub, original) if cls is facade else base_meta.__subclasscheck__(cls, sub)

    meta = type(f"Sandboxed{base_meta.__name__}", (base_meta,), {
        "__call__": __call__, "__instancecheck__": __instancecheck__, "__subclasscheck__": __subclasscheck__,
    })
    namespace: dict[str, Any] = {
        "__slots__": (),
        "__module__": original.__module__,
        "__qualname__": original.__qualname__,
        "__doc__": original.__doc__,
        "__sandbox_original__": original,
        # pydantic reads a field typed with the stand-in (a sandboxed module's `datetime`) as
        # the original class; a subclass of the stand-in is read as itself.
        "__get_pydantic_core_schema__": classmethod(
            lambda cls, source, handler: handler.generate_schema(original if cls is facade else source)
        ),
    }
    for name, rule in methods.items():
        static = inspect.getattr_static(original, name)
        member = f"{qualified_name}.{name}"
        if isinstance(static, (classmethod, types.ClassMethodDescriptorType)):
            namespace[name] = classmethod(_class_method(member, static, rule))
        elif isinstance(static, staticmethod):
            namespace[name] = staticmethod(guard_function(member, static.__func__, rule))
        else:
            raise ValueError(
                f"Cannot restrict {member}: only class methods and static methods of a class can be "
                "restricted (instances workflow code creates are plain instances of the original class)."
            )
    facade = meta(original.__name__, (original,), namespace)
    return facade


def _class_method(qualified_name: str, descriptor: Any, rule: Restriction) -> Callable[..., Any]:
    def guarded(cls: type, *args: Any, **kwargs: Any) -> Any:
        _check(qualified_name, rule, len(args) + len(kwargs))
        return descriptor.__get__(None, cls)(*args, **kwargs)

    guarded.__name__ = qualified_name.rsplit(".", 1)[-1]
    guarded.__doc__ = getattr(descriptor, "__doc__", None)
    return guarded


class RestrictedViews:
    """The restricted views of one set of restrictions, built on first use, shared by runs."""

    def __init__(self, restrictions: SandboxRestrictions) -> None:
        self._members = restrictions.invalid_module_members
        # Packages of restricted modules (urllib for urllib.request) get views too, so that
        # `import urllib.request; urllib.request.urlopen(...)` reaches the restricted view.
        self._parents = {name[:i] for name in self._members for i, c in enumerate(name) if c == "."}
        self._views: dict[str, types.ModuleType] = {}
        # id(original) -> stand-in, to put stand-ins into a copied namespace (notebook cells).
        self._by_id: dict[int, Any] = {}
        self.builtins: dict[str, Any] = dict(builtins.__dict__)
        view = self.module(builtins)
        for name in self._members.get("builtins", {}):
            if hasattr(view, name):
                self.builtins[name] = getattr(view, name)

    def module(self, real: types.ModuleType) -> types.ModuleType:
        """The view of ``real`` that sandboxed code gets (``real`` itself if nothing is restricted)."""
        view = self._views.get(real.__name__)
        if view is not None:
            return view
        members = self._members.get(real.__name__) or {}
        if not members and real.__name__ not in self._parents:
            return real
        view = types.ModuleType(real.__name__, real.__doc__)
        view.__dict__.update(real.__dict__)
        self._views[real.__name__] = view  # before the children's views, which may look it up
        whole: dict[str, Restriction] = {}
        methods: dict[str, dict[str, Restriction]] = {}
        for path, rule in members.items():
            head, _, rest = path.partition(".")
            if not hasattr(real, head):
                continue  # not in this Python version
            if rest:
                methods.setdefault(head, {})[rest] = rule
            else:
                whole[head] = rule
        for attr in {*whole, *methods}:
            original = getattr(real, attr)
            name = f"{real.__name__}.{attr}"
            stand_in: Any
            if isinstance(original, type):
                stand_in = guard_class(name, original, whole.get(attr), methods.get(attr, {}))
            else:
                stand_in = guard_function(name, original, whole[attr])
            setattr(view, attr, stand_in)
            self._by_id[id(original)] = stand_in
        for name in self._members.keys() | self._parents:
            parent, _, child = name.rpartition(".")
            if parent == real.__name__ and name in sys.modules and child in view.__dict__:
                setattr(view, child, self.module(sys.modules[name]))
        self._by_id[id(real)] = view
        return view

    def substitute(self, namespace: Mapping[str, Any]) -> dict[str, Any]:
        """A shallow copy of ``namespace`` in which restricted modules and members (imported
        there by earlier code, e.g. another notebook cell) are replaced by their stand-ins."""
        for name in self._members.keys() | self._parents:
            real = sys.modules.get(name)
            if real is not None and name not in self._views:
                self.module(real)
        by_id = self._by_id
        return {key: by_id.get(id(value), value) for key, value in namespace.items()}


def original_of(obj: Any) -> Any:
    """The real object behind a stand-in (the object itself otherwise)."""
    return getattr(obj, "__sandbox_original__", obj)
