"""Workflow updates, as seen from workflow code.

An update request reaches the code with a workflow task. Live, its validator runs first: a
rejection becomes a ``RejectUpdate`` command that writes no event (as in Temporal, where the
rejected update's speculative task leaves no trace). An accepted update writes
``WorkflowExecutionUpdateAccepted`` (its request, so replay can re-deliver it without the
client) and, when the handler returns or raises, ``WorkflowExecutionUpdateCompleted``.
"""

from __future__ import annotations

import contextvars
import inspect
from typing import TYPE_CHECKING, Any, Callable, Sequence

from engine._conversion.payload_converter import to_json_payload
from engine._runtime import handlers as _handlers
from engine._runtime import interceptors as _interceptors
from engine._runtime.commands import COMMAND_EVENTS
from engine.errors import ApplicationError, FailureError
from engine.history import HistoryEvent

if TYPE_CHECKING:
    from engine._runtime.handler_table import Handler
    from engine._runtime.instance import WorkflowInstance

# Commands that write no history event (so replay never matches them).
NO_EVENT_COMMANDS = frozenset({"RejectUpdate"})


def requests_in(events: Sequence[HistoryEvent], start: int) -> list[dict[str, Any]]:
    """The updates accepted by the workflow task completed at ``events[start - 1]``: replay
    delivers them to the activation that accepted them."""

    found = []
    for event in events[start:]:
        if event.event_type not in COMMAND_EVENTS:
            break
        if event.event_type == "WorkflowExecutionUpdateAccepted":
            request = event.attributes.get("acceptedRequest") or {}
            meta = request.get("meta") or {}
            found.append(
                {
                    "updateId": meta.get("updateId") or event.attributes.get("protocolInstanceId"),
                    "identity": meta.get("identity", ""),
                    "name": (request.get("input") or {}).get("name", ""),
                    "args": (request.get("input") or {}).get("args"),
                    "header": (request.get("input") or {}).get("header"),
                }
            )
    return found


# (update id, update name) while an update's validator or handler runs (workflow.logger and
# workflow.current_update_info() read it); a handler's task inherits it when it is created.
current: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("engine_current_update", default=None)


def deliver(instance: WorkflowInstance, request: dict[str, Any], *, validate: bool) -> None:
    """Queue one update request on the instance's loop (in arrival order, with other jobs)."""
    instance.call_soon(_start, instance, request, validate)


def _start(instance: WorkflowInstance, request: dict[str, Any], validate: bool) -> None:
    update_id = str(request["updateId"])
    name = str(request["name"])
    # Looked up now, not when the request arrived: the run's code may have set the handler
    # since (workflow.set_update_handler at the top of its run method), as in temporalio.
    handler = instance.handlers.find("update", name)
    if handler is None or instance._object is None:
        known = ", ".join(instance.handlers.names("update")) or "none"
        _reject(instance, update_id, ApplicationError(f"Workflow {instance.info.workflow_type} has no update {name!r} (it has: {known}).", type="UnknownUpdate"))
        return
    try:
        args = handler.arguments(instance.payload_converter, name, request.get("args"), f"the input of update {name!r}")
    except Exception as e:  # noqa: BLE001 - bad arguments reject the update, they are the caller's fault
        _reject(instance, update_id, ApplicationError(f"Update {name!r}: cannot convert its arguments ({e})", type="BadArguments"))
        return
    token = current.set((update_id, name))
    try:
        _validate_and_accept(instance, request, update_id, name, handler, args, validate)
    finally:
        current.reset(token)


def _validate_and_accept(
    instance: WorkflowInstance, request: dict[str, Any], update_id: str, name: str, handler: Handler, args: list[Any], validate: bool
) -> None:
    if validate and (handler.validator is not None or instance._inbound is not None):
        before = len(instance._commands)
        try:
            if instance._inbound is None:
                handler.validate(instance._object, args)
            else:
                headers = _interceptors.headers_from_json(request.get("header"))
                instance._inbound.handle_update_validator(_interceptors.HandleUpdateInput(update_id, name, args, headers))
        except Exception as e:  # noqa: BLE001 - any error from a validator rejects the update
            del instance._commands[before:]
            _reject(instance, update_id, e)
            return
        if len(instance._commands) != before:
            del instance._commands[before:]
            _reject(instance, update_id, RuntimeError(f"The validator of update {name!r} tried to start an activity or timer; validators may only check arguments and state."))
            return
    instance._add_command(
        "AcceptUpdate",
        {
            "protocolInstanceId": update_id,
            "acceptedRequestMessageId": f"{update_id}/request",
            "acceptedRequest": {
                "meta": {"updateId": update_id, "identity": request.get("identity", "")},
                "input": {
                    **({"header": request["header"]} if request.get("header") else {}),
                    "name": name,
                    "args": request.get("args") or {"payloads": []},
                },
            },
        },
    )
    call: Callable[[], Any] = lambda: handler.call(instance._object, args)  # noqa: E731
    if instance._inbound is not None:
        inbound = _interceptors.HandleUpdateInput(update_id, name, args, _interceptors.headers_from_json(request.get("header")))
        call = lambda: instance._inbound.handle_update_handler(inbound)  # noqa: E731
    instance.create_task(_handlers.tracked(instance, _run(instance, update_id, request.get("identity", ""), call)))


async def _run(instance: WorkflowInstance, update_id: str, identity: str, call: Callable[[], Any]) -> None:
    meta = {"updateId": update_id, "identity": identity}
    try:
        result = call()
        if inspect.isawaitable(result):
            result = await result
    except FailureError as e:
        # As temporalio: an ApplicationError (or other Temporal failure) fails the update,
        # not the workflow; the caller gets WorkflowUpdateFailedError.
        failure = instance.failure_converter.to_failure(e, instance.payload_converter)
        instance._add_command("CompleteUpdate", {"meta": meta, "outcome": {"failure": failure}})
        return
    except Exception as e:  # noqa: BLE001 - a bug in a handler fails the workflow task, as a signal's does
        instance._failure = e
        return
    payload = to_json_payload(instance.payload_converter, result, f"the result of update {update_id!r}")
    instance._add_command("CompleteUpdate", {"meta": meta, "outcome": {"success": {"payloads": [payload]}}})


def _reject(instance: WorkflowInstance, update_id: str, error: BaseException) -> None:
    failure = instance.failure_converter.to_failure(error, instance.payload_converter)
    instance._add_command("RejectUpdate", {"updateId": update_id, "failure": failure})
