"""``FailureError.failure``: the failure a history recorded, read as temporalio reads its
protobuf ``Failure`` (``failure.message``, ``failure.stack_trace``, ``failure.cause``,
``failure.application_failure_info.type``), over the JSON object the engine keeps."""

from __future__ import annotations

import re
from typing import Any, Mapping

# Fields protobuf gives as "" when unset (code tests them with `if failure.stack_trace`).
_STRING_FIELDS = frozenset({"message", "source", "stack_trace"})
_CAMEL = re.compile(r"_([a-z])")


class FailureView:
    """Read-only attribute access to one Failure JSON object (snake_case names, as protobuf's
    Python classes); nested objects are views too, and ``to_json()`` gives the object."""

    __slots__ = ("_json",)

    def __init__(self, json: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_json", dict(json))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = self._json.get(_CAMEL.sub(lambda m: m.group(1).upper(), name))
        if value is None:
            return "" if name in _STRING_FIELDS else None
        return FailureView(value) if isinstance(value, Mapping) else value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("A recorded failure is read-only.")

    def HasField(self, name: str) -> bool:  # noqa: N802 - protobuf's spelling
        return self.__getattr__(name) not in (None, "")

    def to_json(self) -> dict[str, Any]:
        return dict(self._json)

    def __repr__(self) -> str:
        return f"FailureView({self._json!r})"
