"""Temporal's protobuf messages as temporalio code reads them (``failure.stack_trace``,
``raw_description.pending_activities``), over the JSON objects the engine keeps.

temporalio hands out protobuf messages in a few places (``FailureError.failure``,
``WorkflowExecutionDescription.raw_description``); there is no protobuf here, so a
``ProtoView`` gives the same attribute names (snake_case) over the message's JSON form.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

_CAMEL = re.compile(r"_([a-z])")

# What protobuf gives for an unset field, for the fields code tests or loops over.
FAILURE_DEFAULTS: Mapping[str, Any] = {"message": "", "source": "", "stack_trace": ""}
DESCRIBE_DEFAULTS: Mapping[str, Any] = {"pending_activities": (), "pending_children": (), "callbacks": ()}


class ProtoView:
    """Read-only attribute access to one message's JSON (snake_case names, as protobuf's
    Python classes). Nested objects and lists of them are views too; an unset field is its
    entry in ``defaults`` (else None); ``to_json()`` gives the object."""

    __slots__ = ("_json", "_defaults")

    def __init__(self, json: Mapping[str, Any], defaults: Mapping[str, Any] = FAILURE_DEFAULTS) -> None:
        object.__setattr__(self, "_json", dict(json))
        object.__setattr__(self, "_defaults", defaults)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = self._json.get(_CAMEL.sub(lambda m: m.group(1).upper(), name))
        if value is None:
            default = self._defaults.get(name)
            return list(default) if isinstance(default, tuple) else default
        return self._wrap(value)

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            return ProtoView(value, self._defaults)
        if isinstance(value, list):
            return [self._wrap(v) for v in value]
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("This is a read-only view of a recorded message.")

    def HasField(self, name: str) -> bool:  # noqa: N802 - protobuf's spelling
        return self.__getattr__(name) not in (None, "", [])

    def to_json(self) -> dict[str, Any]:
        return dict(self._json)

    def __repr__(self) -> str:
        return f"ProtoView({self._json!r})"
