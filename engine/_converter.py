"""Values <-> Temporal-shaped payloads: JSON with dataclasses, as temporalio's default converter.

A payload is ``{"metadata": {"encoding": b64(...)}, "data": b64(...)}``, the form Temporal's
JSON history uses, so what the store holds exports unchanged.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import enum
import json
import typing
import uuid
from typing import Any, Mapping, Sequence

from engine.errors import PayloadError

Payload = dict[str, Any]

_JSON_PLAIN = base64.b64encode(b"json/plain").decode()
_BINARY_NULL = base64.b64encode(b"binary/null").decode()


def _default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(type(value).__name__)


def to_payload(value: Any, *, what: str = "value") -> Payload:
    """Encode one value; ``what`` names it in errors ("argument 1 of activity 'withdraw'")."""
    if value is None:
        return {"metadata": {"encoding": _BINARY_NULL}, "data": ""}
    try:
        text = json.dumps(value, default=_default, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise PayloadError(
            f"Cannot serialize {what}: {type(value).__name__} value {value!r:.80} is not "
            f"JSON-serializable ({e}). Workflow and activity inputs and results are stored "
            "in history as JSON: pass str/int/float/bool/None, lists, dicts or dataclasses."
        ) from None
    return {
        "metadata": {"encoding": _JSON_PLAIN},
        "data": base64.b64encode(text.encode()).decode(),
    }


def to_payloads(values: Sequence[Any], *, what: str = "argument") -> dict[str, Any]:
    return {
        "payloads": [to_payload(v, what=f"{what} {i + 1}") for i, v in enumerate(values)]
    }


def from_payload(payload: Mapping[str, Any] | None, type_hint: Any = None) -> Any:
    if not payload:
        return None
    try:
        encoding = base64.b64decode(payload.get("metadata", {}).get("encoding", "")).decode()
        data = base64.b64decode(payload.get("data") or "")
    except (ValueError, AttributeError) as e:
        raise PayloadError(f"Malformed payload {payload!r:.120}: {e}") from None
    if encoding == "binary/null":
        return None
    if encoding == "json/plain":
        try:
            value = json.loads(data)
        except ValueError as e:
            raise PayloadError(f"Payload is marked json/plain but is not JSON: {e}") from None
        return convert(value, type_hint) if type_hint is not None else value
    if encoding == "binary/plain":
        return data
    raise PayloadError(
        f"Unknown payload encoding {encoding!r}: this payload was written by a converter or "
        "codec this engine was not given. Pass the same data converter to the Client."
    )


def from_payloads(obj: Mapping[str, Any] | None, type_hints: Sequence[Any] = ()) -> list[Any]:
    payloads = (obj or {}).get("payloads") or []
    hints = list(type_hints) + [None] * (len(payloads) - len(type_hints))
    return [from_payload(p, h) for p, h in zip(payloads, hints)]


def convert(value: Any, hint: Any) -> Any:
    """Shape decoded JSON into ``hint`` (dataclasses, Optional, list/dict, datetime, UUID, Enum)."""
    if hint is None or hint is Any or value is None:
        return value
    hint = getattr(hint, "__sandbox_original__", hint)  # the sandbox's stand-in for datetime & co
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(value, arg)
            except (TypeError, ValueError):
                continue
        return value
    if origin in (list, Sequence, typing.List) and isinstance(value, list):
        return [convert(v, args[0] if args else None) for v in value]
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if origin in (dict, Mapping, typing.Dict) and isinstance(value, dict):
        vh = args[1] if len(args) == 2 else None
        return {k: convert(v, vh) for k, v in value.items()}
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            hints = typing.get_type_hints(hint)
            known = {f.name for f in dataclasses.fields(hint)}
            # Unknown keys are dropped so that an older dataclass can read newer data.
            return hint(**{k: convert(v, hints.get(k)) for k, v in value.items() if k in known})
        if issubclass(hint, enum.Enum):
            return hint(value)
        if hint is _dt.datetime and isinstance(value, str):
            return _dt.datetime.fromisoformat(value)
        if hint is _dt.date and isinstance(value, str):
            return _dt.date.fromisoformat(value)
        if hint is uuid.UUID and isinstance(value, str):
            return uuid.UUID(value)
    return value


def encode_failure(error: BaseException, *, source: str = "PythonSDK") -> dict[str, Any]:
    """An exception as Temporal's ``Failure`` JSON (message, stack, applicationFailureInfo...)."""
    import traceback

    from engine import errors

    failure: dict[str, Any] = {
        "message": (str(error.args[0]) if error.args else str(error)) or type(error).__name__,
        "source": source,
        "stackTrace": "".join(traceback.format_exception(error)).strip()[-4000:],
    }
    if isinstance(error, errors.ApplicationError):
        info: dict[str, Any] = {
            "type": error.type or type(error).__name__,
            "nonRetryable": error.non_retryable,
        }
        if error.details:
            info["details"] = to_payloads(error.details, what="error detail")
        failure["applicationFailureInfo"] = info
    elif isinstance(error, errors.TimeoutError):
        failure["timeoutFailureInfo"] = {
            "timeoutType": f"TIMEOUT_TYPE_{(error.type or errors.TimeoutType.UNSPECIFIED).name}"
        }
    elif isinstance(error, errors.CancelledError):
        failure["canceledFailureInfo"] = {}
    elif isinstance(error, errors.ActivityError):
        failure["activityFailureInfo"] = {
            "scheduledEventId": str(error.scheduled_event_id),
            "startedEventId": str(error.started_event_id),
            "identity": error.identity,
            "activityType": {"name": error.activity_type},
            "activityId": error.activity_id,
            "retryState": f"RETRY_STATE_{(error.retry_state or errors.RetryState.UNSPECIFIED).name}",
        }
    else:
        failure["applicationFailureInfo"] = {"type": type(error).__name__, "nonRetryable": False}
    if error.__cause__ is not None and error.__cause__ is not error:
        failure["cause"] = encode_failure(error.__cause__, source=source)
    return failure


def decode_failure(failure: Mapping[str, Any] | None) -> BaseException:
    """Temporal ``Failure`` JSON back to our exception types (the inverse of ``encode_failure``)."""
    from engine import errors

    failure = failure or {}
    message = failure.get("message", "")
    exc: errors.FailureError
    if "applicationFailureInfo" in failure:
        info = failure["applicationFailureInfo"] or {}
        details = from_payloads(info.get("details"))
        exc = errors.ApplicationError(
            message, *details, type=info.get("type"), non_retryable=bool(info.get("nonRetryable"))
        )
    elif "timeoutFailureInfo" in failure:
        name = str((failure["timeoutFailureInfo"] or {}).get("timeoutType", ""))
        name = name.replace("TIMEOUT_TYPE_", "")
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
    else:
        exc = errors.ApplicationError(message)
    if failure.get("cause"):
        exc.__cause__ = decode_failure(failure["cause"])
    setattr(exc, "failure_json", dict(failure))
    return exc
