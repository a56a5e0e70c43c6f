"""Pydantic models as workflow and activity values (mirrors ``temporalio.contrib.pydantic``).

Pass ``pydantic_data_converter`` as a client's ``data_converter``: values are written as
``json/plain`` by pydantic (models, and the types pydantic knows such as ``IPv4Address``) and
read back by validating the JSON against the parameter's type hint. Needs ``pydantic`` (v2).
"""

from __future__ import annotations

from typing import Any

try:
    import pydantic
    import pydantic_core
except ImportError as e:  # pragma: no cover - pydantic is optional
    raise ImportError(
        "engine.contrib.pydantic (temporalio.contrib.pydantic) needs pydantic: pip install 'pydantic>=2'."
    ) from e

from engine._conversion.payload_converter import (
    BinaryNullPayloadConverter,
    BinaryPlainPayloadConverter,
    CompositePayloadConverter,
    EncodingPayloadConverter,
    Payload,
)
from engine.converter import DataConverter

__all__ = ["PydanticJSONPlainPayloadConverter", "PydanticPayloadConverter", "pydantic_data_converter"]


class PydanticJSONPlainPayloadConverter(EncodingPayloadConverter):
    """``json/plain`` written by ``pydantic_core.to_json`` and read by a ``TypeAdapter`` of
    the type hint (``Any`` without one)."""

    def __init__(self) -> None:
        self._adapters: dict[Any, pydantic.TypeAdapter[Any]] = {}

    @property
    def encoding(self) -> str:
        return "json/plain"

    def to_payload(self, value: Any) -> Payload | None:
        return Payload({"encoding": b"json/plain"}, pydantic_core.to_json(value))

    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        return self._adapter(Any if type_hint is None else type_hint).validate_json(payload.data)

    def _adapter(self, hint: Any) -> pydantic.TypeAdapter[Any]:
        try:
            cached = self._adapters.get(hint)
        except TypeError:  # an unhashable hint: not cached
            return pydantic.TypeAdapter(hint)
        if cached is None:
            cached = self._adapters[hint] = pydantic.TypeAdapter(hint)
        return cached


class PydanticPayloadConverter(CompositePayloadConverter):
    """``None`` and ``bytes`` as the default converter writes them, everything else by pydantic."""

    def __init__(self) -> None:
        super().__init__(BinaryNullPayloadConverter(), BinaryPlainPayloadConverter(), PydanticJSONPlainPayloadConverter())


pydantic_data_converter = DataConverter(payload_converter_class=PydanticPayloadConverter)
"""A data converter for pydantic models: ``Client.connect(..., data_converter=pydantic_data_converter)``."""
