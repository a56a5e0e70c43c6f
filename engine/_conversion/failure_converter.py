"""Exceptions <-> Temporal ``Failure`` JSON: the failure converters of :mod:`engine.converter`.

A failure is the JSON object Temporal's history holds (``message``, ``source``, ``stackTrace``,
``cause`` and one ``...FailureInfo``). temporalio's converters fill a protobuf message; here
``to_failure`` returns the JSON object and ``from_failure`` reads one.
"""

from __future__ import annotations

import copy
import traceback
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping

from engine import errors
from engine._conversion.payload_converter import Payload, PayloadConverter, from_json_payloads, to_json_payloads

__all__ = ["FailureConverter", "DefaultFailureConverter", "DefaultFailureConverterWithEncodedAttributes"]

_STACK_LIMIT = 4000


def _message(error: BaseException) -> str:
    # str() runs user code (__str__ of the exception or of its first argument); when it
    # raises, record that rather than fail the encoding and blame the payload codec.
    try:
        text = str(error.args[0]) if error.args else str(error)
    except Exception as e:  # noqa: BLE001 - any error of user code
        return f"{type(error).__name__} (its str() failed: {type(e).__name__})"
    return text or type(error).__name__


class FailureConverter(ABC):
    """Converts exceptions to Temporal failure JSON and back."""

    default: ClassVar[FailureConverter]

    @abstractmethod
    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter) -> dict[str, Any]:
        """The failure JSON of ``exception`` (its cause chain included)."""

    @abstractmethod
    def from_failure(self, failure: Mapping[str, Any], payload_converter: PayloadConverter) -> BaseException:
        """The exception a failure JSON describes (its causes as ``__cause__``)."""


class DefaultFailureConverter(FailureConverter):
    """Our error types as Temporal failures; any other exception becomes an application failure
    whose type is the exception's class name.

    With ``encode_common_attributes=True`` each failure's message and stack trace move into an
    ``encodedAttributes`` payload (the message becomes ``"Encoded failure"``), so a payload codec
    encrypts them too; a worker or client with that codec reads them back.
    """

    def __init__(self, *, encode_common_attributes: bool = False) -> None:
        self._encode_common_attributes = encode_common_attributes

    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter) -> dict[str, Any]:
        error = native_error(exception)
        original = getattr(error, "failure_json", None)
        if isinstance(error, errors.FailureError) and isinstance(original, Mapping):
            # A failure read from history goes on as it was recorded, as temporalio passes
            # on a failure's proto: its stack trace is where the activity (or child) raised,
            # which re-rendering this rebuilt exception would lose.
            failure = {k: copy.deepcopy(v) for k, v in original.items() if k != "cause"}
            if failure.get("message") != "Encoded failure":  # restored by with_common_attributes
                failure.pop("encodedAttributes", None)
        else:
            failure = self._new_failure(error, payload_converter)
        if error.__cause__ is not None and error.__cause__ is not error:
            failure["cause"] = self.to_failure(error.__cause__, payload_converter)
        if self._encode_common_attributes and "encodedAttributes" not in failure:
            attributes = {"message": failure["message"], "stack_trace": failure.get("stackTrace", "")}
            failure["encodedAttributes"] = payload_converter.to_payload(attributes).to_json()
            failure["message"] = "Encoded failure"
            failure["stackTrace"] = ""
        return failure

    def _new_failure(self, error: BaseException, payload_converter: PayloadConverter) -> dict[str, Any]:
        failure: dict[str, Any] = {
            "message": _message(error),
            "stackTrace": "".join(traceback.format_exception(error)).strip()[-_STACK_LIMIT:],
        }
        if isinstance(error, errors.ApplicationError):
            info: dict[str, Any] = {"type": error.type or type(error).__name__, "nonRetryable": error.non_retryable}
            if error.details:
                info["details"] = to_json_payloads(payload_converter, list(error.details), "error detail")
            if error.category:  # proto3 JSON: an UNSPECIFIED enum is no field at all
                info["category"] = f"APPLICATION_ERROR_CATEGORY_{error.category.name}"
            failure["applicationFailureInfo"] = info
        elif isinstance(error, errors.TimeoutError):
            kind = error.type or errors.TimeoutType.UNSPECIFIED
            failure["timeoutFailureInfo"] = {"timeoutType": f"TIMEOUT_TYPE_{kind.name}"}
        elif isinstance(error, errors.CancelledError):
            failure["canceledFailureInfo"] = {}
        elif isinstance(error, errors.TerminatedError):
            failure["terminatedFailureInfo"] = {}
        elif isinstance(error, errors.ChildWorkflowError):
            state = error.retry_state or errors.RetryState.UNSPECIFIED
            failure["childWorkflowExecutionFailureInfo"] = {
                "namespace": error.namespace,
                "workflowExecution": {"workflowId": error.workflow_id, "runId": error.run_id},
                "workflowType": {"name": error.workflow_type},
                "initiatedEventId": str(error.initiated_event_id),
                "startedEventId": str(error.started_event_id),
                "retryState": f"RETRY_STATE_{state.name}",
            }
        elif isinstance(error, errors.ActivityError):
            state = error.retry_state or errors.RetryState.UNSPECIFIED
            failure["activityFailureInfo"] = {
                "scheduledEventId": str(error.scheduled_event_id),
                "startedEventId": str(error.started_event_id),
                "identity": error.identity,
                "activityType": {"name": error.activity_type},
                "activityId": error.activity_id,
                "retryState": f"RETRY_STATE_{state.name}",
            }
        else:
            failure["applicationFailureInfo"] = {"type": type(error).__name__, "nonRetryable": False}
        return failure

    def from_failure(self, failure: Mapping[str, Any], payload_converter: PayloadConverter) -> BaseException:
        failure = failure or {}
        if failure.get("encodedAttributes"):
            failure = with_common_attributes(failure, payload_converter)
        message = failure.get("message", "")
        exc: errors.FailureError
        if "applicationFailureInfo" in failure:
            info = failure["applicationFailureInfo"] or {}
            details = from_json_payloads(payload_converter, info.get("details"), what="error details")
            category = str(info.get("category") or "").removeprefix("APPLICATION_ERROR_CATEGORY_")
            exc = errors.ApplicationError(
                message, *details, type=info.get("type"), non_retryable=bool(info.get("nonRetryable")),
                category=errors.ApplicationErrorCategory.__members__.get(category, errors.ApplicationErrorCategory.UNSPECIFIED),
            )
        elif "timeoutFailureInfo" in failure:
            name = str((failure["timeoutFailureInfo"] or {}).get("timeoutType", "")).replace("TIMEOUT_TYPE_", "")
            exc = errors.TimeoutError(
                message, type=errors.TimeoutType.__members__.get(name, errors.TimeoutType.UNSPECIFIED)
            )
        elif "canceledFailureInfo" in failure:
            exc = errors.CancelledError(message)
        elif "terminatedFailureInfo" in failure:
            exc = errors.TerminatedError(message)
        elif "activityFailureInfo" in failure:
            info = failure["activityFailureInfo"] or {}
            state = str(info.get("retryState", "")).replace("RETRY_STATE_", "")
            exc = errors.ActivityError(
                message,
                scheduled_event_id=int(info.get("scheduledEventId") or 0),
                started_event_id=int(info.get("startedEventId") or 0),
                identity=info.get("identity", ""),
                activity_type=(info.get("activityType") or {}).get("name", ""),
                activity_id=info.get("activityId", ""),
                retry_state=errors.RetryState.__members__.get(state, errors.RetryState.UNSPECIFIED),
            )
        elif "childWorkflowExecutionFailureInfo" in failure:
            info = failure["childWorkflowExecutionFailureInfo"] or {}
            execution = info.get("workflowExecution") or {}
            state = str(info.get("retryState", "")).replace("RETRY_STATE_", "")
            exc = errors.ChildWorkflowError(
                message,
                namespace=info.get("namespace", ""),
                workflow_id=execution.get("workflowId", ""),
                run_id=execution.get("runId", ""),
                workflow_type=(info.get("workflowType") or {}).get("name", ""),
                initiated_event_id=int(info.get("initiatedEventId") or 0),
                started_event_id=int(info.get("startedEventId") or 0),
                retry_state=errors.RetryState.__members__.get(state, errors.RetryState.UNSPECIFIED),
            )
        else:
            exc = errors.ApplicationError(message)
        if failure.get("cause"):
            exc.__cause__ = self.from_failure(failure["cause"], payload_converter)
        setattr(exc, "failure_json", dict(failure))
        return exc


class DefaultFailureConverterWithEncodedAttributes(DefaultFailureConverter):
    """The default failure converter with ``encode_common_attributes=True``: failure messages
    and stack traces reach the store only through the payload codec (encrypted, say)."""

    def __init__(self) -> None:
        super().__init__(encode_common_attributes=True)


FailureConverter.default = DefaultFailureConverter()


def with_common_attributes(failure: Mapping[str, Any], payload_converter: PayloadConverter) -> dict[str, Any]:
    """A copy of ``failure`` with the message and stack trace of its (already codec-decoded)
    ``encodedAttributes`` put back; unreadable attributes leave it as it is."""
    restored = copy.copy(dict(failure))
    try:
        attributes = payload_converter.from_payload(Payload.from_json(failure["encodedAttributes"]))
    except Exception:  # noqa: BLE001 - still encoded (no codec here) or not ours: show as stored
        return restored
    if isinstance(attributes, dict):
        if isinstance(attributes.get("message"), str):
            restored["message"] = attributes["message"]
        if isinstance(attributes.get("stack_trace"), str):
            restored["stackTrace"] = attributes["stack_trace"]
    return restored


def encode_failure(error: BaseException) -> dict[str, Any]:
    """A failure the engine itself writes (timeouts): the default converter, no codec, as the
    Temporal server writes its own failures in clear."""
    return FailureConverter.default.to_failure(error, PayloadConverter.default)


def native_error(error: BaseException) -> BaseException:
    """An ``ApplicationError`` of the real temporalio (raised by an activity of an app that
    imports it) as the engine's, so that its type, details and ``non_retryable`` reach the
    history as Temporal records them; any other exception as it is."""
    kind = type(error)
    if kind.__name__ != "ApplicationError" or not kind.__module__.startswith("temporalio."):
        return error
    ours = errors.ApplicationError(
        getattr(error, "message", str(error)),
        *getattr(error, "details", ()),
        type=getattr(error, "type", None),
        non_retryable=bool(getattr(error, "non_retryable", False)),
        next_retry_delay=getattr(error, "next_retry_delay", None),
        category=errors.ApplicationErrorCategory(int(getattr(error, "category", 0) or 0)),
    )
    ours.__cause__ = error.__cause__
    ours.__traceback__ = error.__traceback__
    return ours
