"""The workflow sandbox (mirrors ``temporalio.worker.workflow_sandbox``); see docs/sandbox.md.

Workers run workflow code in it by default. For every run (and every replay) it builds a
fresh copy of the workflow's module, so module globals are the run's own, and it makes calls
whose result differs on replay (``time.time()``, ``datetime.now()``, ``random``,
``uuid.uuid4()``, ``open()``, sockets, subprocesses, ...) raise
``RestrictedWorkflowAccessError`` while workflow code runs. Inside it, ``temporalio.workflow``,
``.activity``, ``.common`` and ``.exceptions`` are the engine's modules.

It guards determinism; it is not a security boundary.
"""

from __future__ import annotations

from engine._sandbox.rules import Restriction, SandboxRestrictions
from engine._sandbox.runner import SandboxedWorkflowRunner, UnsandboxedWorkflowRunner, WorkflowRunner, register_source
from engine._sandbox.temporalio_names import COVERED as TEMPORALIO_NAMES
from engine.errors import RestrictedWorkflowAccessError

__all__ = [
    "SandboxedWorkflowRunner",
    "UnsandboxedWorkflowRunner",
    "WorkflowRunner",
    "SandboxRestrictions",
    "Restriction",
    "RestrictedWorkflowAccessError",
    "register_source",
    "TEMPORALIO_NAMES",
]
