"""Data conversion: values <-> payloads <-> what the store holds (mirrors ``temporalio.converter``).

Two stages, as in temporalio:

- the **payload converter** turns values into :class:`Payload` objects and back (JSON with
  dataclasses by default). It runs inside workflow code, so it must be deterministic and
  synchronous. Decoding uses the type hints of the workflow or activity signature.
- the **payload codec** (optional) turns payloads into other payloads: encryption,
  compression. It is async and runs at the boundary only: a client encodes what it sends
  (workflow inputs, signals, queries, memos) and decodes results; a worker decodes the
  history and task payloads before workflow or activity code sees them, and encodes the
  payloads of its commands and results before the engine writes them. With an encryption
  codec the database holds ciphertext only.

The failure converter turns exceptions into Temporal failures and back. Once a codec is set,
failure messages and stack traces go through it too
(:class:`DefaultFailureConverterWithEncodedAttributes`, the default then); error types stay in
clear, since the engine reads them to apply retry policies, as Temporal's server does.

    converter = DataConverter(payload_codec=EncryptionCodec(key))   # engine.codecs
    client = await Client.connect("app.db", data_converter=converter)

Differences from temporalio: a failure is Temporal's failure JSON (a ``dict``) rather than a
protobuf message, and there are no protobuf payload converters.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping, Sequence

from engine._conversion.failure_converter import (
    DefaultFailureConverter,
    DefaultFailureConverterWithEncodedAttributes,
    FailureConverter,
    with_common_attributes,
)
from engine._conversion.payload_converter import (
    AdvancedJSONEncoder,
    BinaryNullPayloadConverter,
    BinaryPlainPayloadConverter,
    CompositePayloadConverter,
    DefaultPayloadConverter,
    EncodingPayloadConverter,
    JSONPlainPayloadConverter,
    Payload,
    PayloadConverter,
    from_json_payloads,
    to_json_payload,
    to_json_payloads,
)
from engine._conversion.payload_visitor import transform_events, transform_failure, transform_payloads
from engine._conversion.value_to_type import JSONTypeConverter, JSONTypeConverterUnhandled, value_to_type
from engine.history import History

__all__ = [
    "AdvancedJSONEncoder",
    "BinaryNullPayloadConverter",
    "BinaryPlainPayloadConverter",
    "CompositePayloadConverter",
    "DataConverter",
    "DefaultFailureConverter",
    "DefaultFailureConverterWithEncodedAttributes",
    "DefaultPayloadConverter",
    "EncodingPayloadConverter",
    "FailureConverter",
    "JSONPlainPayloadConverter",
    "JSONTypeConverter",
    "JSONTypeConverterUnhandled",
    "Payload",
    "PayloadCodec",
    "PayloadConverter",
    "decode_failure_json",
    "default",
    "decode_history",
    "value_to_type",
]


class PayloadCodec(ABC):
    """Encodes payloads into other payloads and back (encryption, compression).

    ``encode`` and ``decode`` must not change the payloads they are given; as in temporalio
    they may return fewer payloads than given (at least one), but the codecs of this
    project return one per payload. ``decode`` should pass through payloads it did not
    write, so that data recorded before the codec was introduced stays readable.
    """

    @abstractmethod
    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """The encoded payloads."""

    @abstractmethod
    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """The decoded payloads."""

    async def encode_failure(self, failure: dict[str, Any]) -> None:
        """Encode the payloads of a failure JSON in place (details, encoded attributes, causes)."""
        _replace(failure, await transform_failure(failure, self.encode))

    async def decode_failure(self, failure: dict[str, Any]) -> None:
        """Decode the payloads of a failure JSON in place."""
        _replace(failure, await transform_failure(failure, self.decode))


def _replace(target: dict[str, Any], new: Mapping[str, Any]) -> None:
    if new is not target:
        target.clear()
        target.update(new)


@dataclasses.dataclass(frozen=True)
class DataConverter:
    """A payload converter, an optional payload codec and a failure converter, together.

    Give the same data converter to the client and (through it) the workers: what one encodes
    the other must decode. ``DataConverter.default`` is JSON with no codec.

    With a payload codec, failures are encoded too unless ``failure_converter_class`` says
    otherwise: their message and stack trace move into ``encodedAttributes``, which the codec
    encrypts (temporalio's ``DefaultFailureConverterWithEncodedAttributes``; temporalio needs
    it named, here it is the default once a codec is given). Pass
    ``failure_converter_class=DefaultFailureConverter`` to keep failure texts in clear.
    """

    payload_converter_class: type[PayloadConverter] = DefaultPayloadConverter
    payload_codec: PayloadCodec | None = None
    # None: failure messages and stack traces go through the codec whenever there is one
    # (DefaultFailureConverterWithEncodedAttributes), else DefaultFailureConverter.
    failure_converter_class: type[FailureConverter] | None = None
    payload_converter: PayloadConverter = dataclasses.field(init=False)
    failure_converter: FailureConverter = dataclasses.field(init=False)

    default: ClassVar[DataConverter]

    def __post_init__(self) -> None:
        object.__setattr__(self, "payload_converter", self.payload_converter_class())
        failure_class = self.failure_converter_class or (
            DefaultFailureConverterWithEncodedAttributes if self.payload_codec is not None else DefaultFailureConverter
        )
        object.__setattr__(self, "failure_converter", failure_class())

    def __deepcopy__(self, memo: dict[int, Any]) -> DataConverter:
        # Immutable, and its codec may hold keys in objects that cannot be copied (IPython's
        # %config deep-copies what it is given): copies share this one.
        return self

    async def encode(self, values: Sequence[Any]) -> list[Payload]:
        """Values to payloads, then through the codec."""
        payloads = self.payload_converter.to_payloads(values)
        return await self.payload_codec.encode(payloads) if self.payload_codec else payloads

    async def decode(self, payloads: Sequence[Payload], type_hints: list[Any] | None = None) -> list[Any]:
        """Payloads through the codec, then to values (shaped by ``type_hints``)."""
        if self.payload_codec:
            payloads = await self.payload_codec.decode(payloads)
        return self.payload_converter.from_payloads(payloads, type_hints)

    async def encode_failure(self, exception: BaseException) -> dict[str, Any]:
        """An exception as failure JSON, its payloads encoded."""
        failure = self.failure_converter.to_failure(exception, self.payload_converter)
        if self.payload_codec:
            await self.payload_codec.encode_failure(failure)
        return failure

    async def decode_failure(self, failure: Mapping[str, Any]) -> BaseException:
        """Failure JSON (as stored) back to an exception."""
        if self.payload_codec:
            failure = await transform_failure(failure, self.payload_codec.decode)
        return self.failure_converter.from_failure(failure, self.payload_converter)

    # The engine's own forms: ``{"payloads": [...]}`` JSON as history holds it. ``what`` names
    # the values in errors ("argument of workflow 'Order'").
    async def _encode_json(self, values: Sequence[Any], what: str, *, numbered: bool = True) -> dict[str, Any]:
        obj = (
            to_json_payloads(self.payload_converter, values, what)
            if numbered
            else {"payloads": [to_json_payload(self.payload_converter, v, what) for v in values]}
        )
        if self.payload_codec is None or not values:
            return obj
        return dict(await transform_payloads(obj, self.payload_codec.encode) or obj)

    async def _decode_json(self, obj: Mapping[str, Any] | None, type_hints: Sequence[Any], what: str) -> list[Any]:
        if self.payload_codec is not None:
            obj = await transform_payloads(obj, self.payload_codec.decode)
        return from_json_payloads(self.payload_converter, obj, type_hints, what)

    async def _codec_json(self, obj: Mapping[str, Any] | None, *, encode: bool) -> Mapping[str, Any] | None:
        """Only the codec, on ``{"payloads": [...]}`` (the converter ran elsewhere)."""
        if self.payload_codec is None:
            return obj
        return await transform_payloads(obj, self.payload_codec.encode if encode else self.payload_codec.decode)


DataConverter.default = DataConverter()


async def decode_history(history: History, data_converter: DataConverter) -> History:
    """``history`` with every payload decoded by the converter's codec, for reading it.

    Failures whose message and stack trace were moved into encoded attributes get them back.
    Without a codec the history is returned as it is. Payloads the codec cannot read raise
    its error (a wrong key, say); payloads it did not write pass through.
    """
    codec = data_converter.payload_codec
    if codec is None:
        return history
    events = await transform_events(history.events, codec.decode)
    events = [
        dataclasses.replace(e, attributes=_restore_failures(e.attributes, data_converter.payload_converter))
        for e in events
    ]
    return dataclasses.replace(history, events=tuple(events))


async def decode_failure_json(failure: Mapping[str, Any], data_converter: DataConverter) -> dict[str, Any]:
    """A stored failure JSON made readable: payloads decoded by the codec, message and stack
    trace taken back from encoded attributes. Without a codec, a copy of ``failure``."""
    if data_converter.payload_codec is not None:
        failure = await transform_failure(failure, data_converter.payload_codec.decode)
    return dict(_restore_failures(failure, data_converter.payload_converter))


def _restore_failures(obj: Any, converter: PayloadConverter) -> Any:
    if isinstance(obj, Mapping):
        if "encodedAttributes" in obj and "message" in obj:
            obj = with_common_attributes(obj, converter)
        return {k: _restore_failures(v, converter) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore_failures(v, converter) for v in obj]
    return obj


def default() -> DataConverter:
    """``DataConverter.default`` (temporalio's older spelling, still used by its samples)."""
    return DataConverter.default
