"""temporalio's workflow-facing modules, mapped onto the engine's inside the sandbox.

Workflow code written for Temporal (``from temporalio import workflow``) runs on this engine
unchanged: inside the sandbox, ``temporalio.workflow``, ``temporalio.activity``,
``temporalio.common`` and ``temporalio.exceptions`` are stand-in modules that hold the
engine's objects under temporalio's names. ``COVERED`` lists those names (docs/sandbox.md
shows the same list; a test keeps both in step); any other name of these four modules raises
an error that says so. Other temporalio modules (``temporalio.client``, ...) come from the
real package when it is installed; workflow code rarely needs them.
"""

from __future__ import annotations

import importlib
import types
from typing import Any, Callable


def _same(*names: str) -> dict[str, str]:
    return {name: name for name in names}


# temporalio module -> {temporalio name: engine name}
COVERED: dict[str, dict[str, str]] = {
    "temporalio.workflow": _same(
        "defn", "run", "signal", "query", "execute_activity", "start_activity", "ActivityHandle",
        "ActivityCancellationType", "sleep", "wait_condition", "continue_as_new", "patched",
        "deprecate_patch", "ContinueAsNewError", "now", "time", "time_ns", "random", "uuid4", "info",
        "Info", "logger", "in_workflow", "unsafe", "NondeterminismError", "update", "start_child_workflow",
        "execute_child_workflow", "ChildWorkflowHandle", "ChildWorkflowCancellationType", "ParentClosePolicy",
        "get_external_workflow_handle", "ExternalWorkflowHandle", "ParentInfo", "payload_converter",
        "upsert_search_attributes", "memo", "memo_value", "upsert_memo",
        "init", "LoggerAdapter", "UpdateInfo", "current_update_info", "wait", "as_completed", "all_handlers_finished",
        "execute_activity_method", "start_activity_method", "start_local_activity", "execute_local_activity",
        "start_local_activity_method", "execute_local_activity_method",
        "set_signal_handler", "get_signal_handler", "set_dynamic_signal_handler", "get_dynamic_signal_handler",
        "set_query_handler", "get_query_handler", "set_dynamic_query_handler", "get_dynamic_query_handler",
        "set_update_handler", "get_update_handler", "set_dynamic_update_handler", "get_dynamic_update_handler",
    ),
    "temporalio.activity": _same(
        "defn", "info", "Info", "heartbeat", "in_activity", "is_cancelled", "payload_converter",
        "logger", "LoggerAdapter", "raise_complete_async", "is_worker_shutdown", "wait_for_worker_shutdown",
        "wait_for_worker_shutdown_sync",
    ),
    "temporalio.common": _same(
        "RetryPolicy", "WorkflowIDReusePolicy", "WorkflowIDConflictPolicy", "SearchAttributeKey", "SearchAttributePair",
        "SearchAttributeUpdate", "SearchAttributeIndexedValueType", "SearchAttributeValue", "TypedSearchAttributes",
        "RawValue",
    ),
    "temporalio.exceptions": {
        **_same(
            "FailureError", "ApplicationError", "ApplicationErrorCategory", "ActivityError", "ChildWorkflowError", "CancelledError",
            "TerminatedError", "TimeoutError", "TimeoutType", "RetryState", "ServerError",
            "WorkflowAlreadyStartedError",
        ),
        "TemporalError": "EngineError",
    },
}

ENGINE_MODULES = {
    "temporalio.workflow": "engine.workflow",
    "temporalio.activity": "engine.activity",
    "temporalio.common": "engine.common",
    "temporalio.exceptions": "engine.errors",
}
DOCS = "docs/sandbox.md"


# "module.name" of each temporalio name that code asked for and the engine lacks, in this
# process: the error may be swallowed where it is raised (an activity's AttributeError is
# retried, by default for ever), so `dlab run` and the samples' suite report these.
MISSING: list[str] = []
ON_MISSING: list[Callable[[str], None]] = []  # told each name once, when it is first asked for


def record_missing(name: str) -> None:
    first = name not in MISSING
    MISSING.append(name)
    if first:
        for tell in ON_MISSING:
            tell(name)


def not_covered(module: str, name: str) -> str:
    record_missing(f"{module}.{name}")
    return (
        f"{module}.{name} is not available on durable-lab's engine. Inside workflow code {module} "
        f"maps onto {ENGINE_MODULES[module]} and provides: {', '.join(sorted(COVERED[module]))} "
        f"(see {DOCS}). Rewrite this part with those, or run the workflow on a Temporal cluster."
    )


def build_modules() -> dict[str, types.ModuleType]:
    """Stand-in modules: ``temporalio`` (a package) and its four mapped submodules."""
    package = types.ModuleType("temporalio", "durable-lab's stand-in for temporalio inside the workflow sandbox.")
    package.__path__ = []  # a package: `import temporalio.workflow` goes through the sandbox's importer
    package.__package__ = "temporalio"
    modules = {"temporalio": package}
    for name, table in COVERED.items():
        engine_module = importlib.import_module(ENGINE_MODULES[name])
        module = types.ModuleType(name, f"temporalio's names mapped onto {engine_module.__name__} (durable-lab sandbox).")
        module.__package__ = "temporalio"
        module.__dict__.update({theirs: getattr(engine_module, ours) for theirs, ours in table.items()})
        module.__all__ = sorted(table)  # type: ignore[attr-defined]
        module.__dict__["__getattr__"] = _missing(name)  # PEP 562: names temporalio has and we do not
        setattr(package, name.rpartition(".")[2], module)
        modules[name] = module
    return modules


def _missing(module: str) -> Any:
    def __getattr__(name: str) -> Any:  # noqa: N807 - PEP 562 module hook
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(not_covered(module, name))

    return __getattr__
