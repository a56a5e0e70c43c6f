"""temporalio's ``DataConverter`` working for this engine (issue 11, item 3).

Code written for temporalio passes ``temporalio.converter.DataConverter`` objects to
``Client.connect(data_converter=...)``: a custom payload converter, a payload codec
(encryption), ``temporalio.contrib.pydantic.pydantic_data_converter``. They work on protobuf
``Payload`` messages; the engine works on its own :class:`engine.converter.Payload` (the same
fields). :func:`adapt` wraps such a converter in an engine ``DataConverter`` whose payload
converter and codec call temporalio's, translating payloads at the edge, so values are
encoded and decoded by the user's own code and the store holds what temporalio would send.

temporalio stays optional: nothing here imports it until a temporalio converter is given
(and then it is installed, since the user's object came from it). Its failure converter is
not called (failures here are Temporal's failure JSON, not protobuf); whether failure
messages go through the codec follows its ``encode_common_attributes`` setting.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from engine._conversion.failure_converter import DefaultFailureConverter
from engine._conversion.payload_converter import Payload, PayloadConverter
from engine.converter import DataConverter, PayloadCodec


def is_temporalio_converter(value: Any) -> bool:
    """Whether ``value`` is a ``temporalio.converter.DataConverter`` (without importing temporalio)."""
    return any(
        cls.__name__ == "DataConverter" and cls.__module__.startswith("temporalio.converter")
        for cls in type(value).__mro__
    )


def as_engine_converter(value: Any, where: str) -> DataConverter:
    """``value`` as an engine ``DataConverter``: ours as it is, temporalio's adapted.

    Raises:
        TypeError: anything else, naming ``where`` it was given.
    """
    if isinstance(value, DataConverter):
        return value
    if is_temporalio_converter(value):
        return adapt(value)
    raise TypeError(
        f"{where}: data_converter must be an engine.converter.DataConverter or a "
        f"temporalio.converter.DataConverter, not {type(value).__name__}."
    )


def _to_ours(payload: Any) -> Payload:
    return Payload(metadata=dict(payload.metadata), data=bytes(payload.data))


def _to_theirs(payload: Payload) -> Any:
    from temporalio.api.common.v1 import Payload as ProtoPayload

    return ProtoPayload(metadata=dict(payload.metadata), data=payload.data)


class TemporalioPayloadConverter(PayloadConverter):
    """A temporalio payload converter behind the engine's interface."""

    def __init__(self, converter: Any) -> None:
        self.temporalio_converter = converter

    def to_payloads(self, values: Sequence[Any]) -> list[Payload]:
        return [_to_ours(p) for p in self.temporalio_converter.to_payloads(list(values))]

    def from_payloads(self, payloads: Sequence[Payload], type_hints: list[Any] | None = None) -> list[Any]:
        return list(self.temporalio_converter.from_payloads([_to_theirs(p) for p in payloads], type_hints))


class TemporalioPayloadCodec(PayloadCodec):
    """A temporalio payload codec behind the engine's interface."""

    def __init__(self, codec: Any) -> None:
        self.temporalio_codec = codec

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [_to_ours(p) for p in await self.temporalio_codec.encode([_to_theirs(p) for p in payloads])]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [_to_ours(p) for p in await self.temporalio_codec.decode([_to_theirs(p) for p in payloads])]


@dataclasses.dataclass(frozen=True)
class TemporalioDataConverter(DataConverter):
    """An engine ``DataConverter`` made from a ``temporalio.converter.DataConverter``
    (``temporalio_converter``), which ``Client.config()`` gives back."""

    temporalio_converter: Any = None

    def __post_init__(self) -> None:
        theirs = self.temporalio_converter
        object.__setattr__(self, "payload_converter", TemporalioPayloadConverter(theirs.payload_converter))
        codec = TemporalioPayloadCodec(theirs.payload_codec) if theirs.payload_codec is not None else None
        object.__setattr__(self, "payload_codec", codec)
        # temporalio keeps failure texts in clear unless its converter says otherwise.
        encode = bool(getattr(theirs.failure_converter, "_encode_common_attributes", False)) and codec is not None
        object.__setattr__(self, "failure_converter", DefaultFailureConverter(encode_common_attributes=encode))


def adapt(converter: Any) -> TemporalioDataConverter:
    """An engine ``DataConverter`` that encodes and decodes with temporalio's ``converter``."""
    return TemporalioDataConverter(temporalio_converter=converter)
