"""Values <-> payloads: the payload converters of :mod:`engine.converter` (temporalio's shapes).

A :class:`Payload` is what Temporal's ``temporal.api.common.v1.Payload`` holds: metadata
(``encoding`` and whatever a codec adds) and data bytes. In history and in the store it is
written in Temporal's JSON form (``{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}``),
so what the store holds exports unchanged.
"""

from __future__ import annotations

import base64
import binascii
import collections.abc
import dataclasses
import datetime as _dt
import enum
import functools
import json
import uuid
from abc import ABC, abstractmethod
from itertools import zip_longest
from typing import Any, ClassVar, Mapping, Sequence

import orjson

from engine._conversion.value_to_type import JSONTypeConverter, value_to_type
from engine.common import RawValue
from engine.errors import PayloadError

__all__ = [
    "Payload",
    "PayloadConverter",
    "EncodingPayloadConverter",
    "CompositePayloadConverter",
    "DefaultPayloadConverter",
    "BinaryNullPayloadConverter",
    "BinaryPlainPayloadConverter",
    "JSONPlainPayloadConverter",
    "AdvancedJSONEncoder",
]


@dataclasses.dataclass
class Payload:
    """One encoded value: ``metadata`` (``encoding`` and codec fields) and ``data`` bytes.

    The same fields as Temporal's protobuf ``Payload``; :meth:`SerializeToString` and
    :meth:`FromString` read and write its protobuf wire form, so codecs written for
    temporalio (which encrypt ``payload.SerializeToString()``) work here unchanged, and a
    payload encrypted here decrypts with such a codec.
    """

    metadata: dict[str, bytes] = dataclasses.field(default_factory=dict)
    data: bytes = b""

    def to_json(self) -> dict[str, Any]:
        """Temporal's JSON form (proto JSON omits empty ``data``)."""
        out: dict[str, Any] = {"metadata": {k: _b64_small(v) if type(v) is bytes else _b64(bytes(v)) for k, v in self.metadata.items()}}
        if self.data:
            out["data"] = _b64(self.data)
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Payload:
        """Read Temporal's JSON form; accepts URL-safe and unpadded base64 as proto JSON does.

        Raises:
            PayloadError: not an object, metadata not an object, a field not base64.
        """
        # type() before isinstance: the ABC check of Mapping is slow, and this is a hot path.
        if type(obj) is not dict and not isinstance(obj, collections.abc.Mapping):
            raise PayloadError(f"payload must be an object with 'metadata' and 'data', found {_json_kind(obj)}")
        raw_metadata = obj.get("metadata")
        if raw_metadata is None:
            raw_metadata = {}
        if type(raw_metadata) is not dict and not isinstance(raw_metadata, collections.abc.Mapping):
            raise PayloadError(
                f"payload metadata must be an object, found {_json_kind(raw_metadata)}; "
                'expected {"encoding": "<base64 of e.g. json/plain>"}'
            )
        metadata = {str(k): _unb64(v, f"payload metadata.{k}") for k, v in raw_metadata.items()}
        data = obj.get("data")
        return cls(metadata, _unb64(data, "payload data") if data is not None else b"")

    # Protobuf wire form of temporal.api.common.v1.Payload: field 1 is map<string, bytes>
    # metadata (each entry a message with key = 1, value = 2), field 2 is bytes data.
    def SerializeToString(self) -> bytes:  # noqa: N802 - protobuf's name, kept for ported codecs
        out = bytearray()
        for key, value in self.metadata.items():
            entry = _field(1, key.encode()) + _field(2, bytes(value))
            out += _field(1, entry)
        if self.data:
            out += _field(2, bytes(self.data))
        return bytes(out)

    @classmethod
    def FromString(cls, data: bytes) -> Payload:  # noqa: N802 - protobuf's name, kept for ported codecs
        payload = cls()
        for number, value in _fields(data):
            if number == 1 and isinstance(value, bytes):
                entry = dict(_fields(value))
                key, item = entry.get(1, b""), entry.get(2, b"")
                if isinstance(key, bytes) and isinstance(item, bytes):
                    payload.metadata[key.decode()] = item
            elif number == 2 and isinstance(value, bytes):
                payload.data = value
        return payload


class PayloadConverter(ABC):
    """Converts values to payloads and back (runs in workflow code: must be deterministic)."""

    default: ClassVar[PayloadConverter]

    @abstractmethod
    def to_payloads(self, values: Sequence[Any]) -> list[Payload]:
        """One payload per value."""

    @abstractmethod
    def from_payloads(self, payloads: Sequence[Payload], type_hints: list[Any] | None = None) -> list[Any]:
        """One value per payload; ``type_hints`` (when given) is as long as ``payloads``."""

    def to_payload(self, value: Any) -> Payload:
        return self.to_payloads([value])[0]

    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        return self.from_payloads([payload], [type_hint] if type_hint else None)[0]


class EncodingPayloadConverter(ABC):
    """Converts values of one encoding; a part of a :class:`CompositePayloadConverter`."""

    @property
    @abstractmethod
    def encoding(self) -> str:
        """The ``metadata["encoding"]`` this converter writes and reads."""

    @abstractmethod
    def to_payload(self, value: Any) -> Payload | None:
        """The payload, or ``None`` when this converter does not handle ``value``."""

    @abstractmethod
    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        """The value (the caller already checked the encoding)."""


class CompositePayloadConverter(PayloadConverter):
    """Tries its encoding converters in order to encode; picks by encoding to decode."""

    converters: Mapping[bytes, EncodingPayloadConverter]

    def __init__(self, *converters: EncodingPayloadConverter) -> None:
        self.converters = {c.encoding.encode(): c for c in converters}

    def to_payloads(self, values: Sequence[Any]) -> list[Payload]:
        payloads = []
        for index, value in enumerate(values):
            if isinstance(value, RawValue):  # already a payload: passed through, as in temporalio
                payloads.append(value.payload)
                continue
            for converter in self.converters.values():
                payload = converter.to_payload(value)
                if payload is not None:
                    break
            else:
                raise PayloadError(f"Value at index {index} of type {type(value).__name__} has no payload converter")
            payloads.append(payload)
        return payloads

    def from_payloads(self, payloads: Sequence[Payload], type_hints: list[Any] | None = None) -> list[Any]:
        values = []
        for payload, hint in zip_longest(payloads, type_hints or ()):
            if hint is RawValue:
                values.append(RawValue(payload))
                continue
            encoding = payload.metadata.get("encoding", b"<unknown>")
            converter = self.converters.get(encoding)
            if converter is None:
                raise PayloadError(
                    f"Unknown payload encoding {encoding.decode(errors='replace')!r}: no payload converter "
                    "reads it. A payload codec (encryption, compression) probably wrote it: give the same "
                    "codec to this client and its workers (Client.connect(..., data_converter="
                    "DataConverter(payload_codec=...))), and decode a history before reading it "
                    "(await engine.converter.decode_history(history, data_converter))."
                )
            values.append(converter.from_payload(payload, hint))
        return values


class BinaryNullPayloadConverter(EncodingPayloadConverter):
    """``None`` as ``binary/null`` (no data)."""

    @property
    def encoding(self) -> str:
        return "binary/null"

    def to_payload(self, value: Any) -> Payload | None:
        return Payload({"encoding": b"binary/null"}) if value is None else None

    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        if payload.data:
            raise PayloadError("A binary/null payload must have no data.")
        return None


class BinaryPlainPayloadConverter(EncodingPayloadConverter):
    """``bytes`` as ``binary/plain``."""

    @property
    def encoding(self) -> str:
        return "binary/plain"

    def to_payload(self, value: Any) -> Payload | None:
        return Payload({"encoding": b"binary/plain"}, value) if isinstance(value, bytes) else None

    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        return payload.data


class AdvancedJSONEncoder(json.JSONEncoder):
    """JSON for dataclasses, datetimes, UUIDs and any iterable, as temporalio's encoder.

    Beyond temporalio: a plain ``Enum`` is written as its value and ``date``/``time`` as
    ISO text (temporalio refuses both; ``IntEnum``/``StrEnum`` need nothing, JSON has them).
    """

    def default(self, o: Any) -> Any:
        if isinstance(o, (_dt.datetime, _dt.date, _dt.time)):
            return o.isoformat()
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            # Shallow: the encoder recurses into nested dataclasses itself, and the JSON is
            # the same as from dataclasses.asdict (which deep-copies everything first).
            return {f.name: getattr(o, f.name) for f in dataclasses.fields(o)}
        if isinstance(o, enum.Enum):
            return o.value
        if isinstance(o, uuid.UUID):
            return str(o)
        if not isinstance(o, list) and isinstance(o, collections.abc.Iterable):
            return list(o)
        return super().default(o)


class JSONPlainPayloadConverter(EncodingPayloadConverter):
    """Values as ``json/plain``: compact, keys sorted, non-ASCII escaped: byte for byte what
    temporalio writes for the same value. Decoding shapes the JSON into the type hint."""

    def __init__(
        self,
        *,
        encoder: type[json.JSONEncoder] | None = AdvancedJSONEncoder,
        decoder: type[json.JSONDecoder] | None = None,
        encoding: str = "json/plain",
        custom_type_converters: Sequence[JSONTypeConverter] = (),
    ) -> None:
        self._encoder = encoder
        self._decoder = decoder
        # One instance each, reused: json.dumps(cls=...) would build an encoder per call.
        self._json_encoder = (encoder or json.JSONEncoder)(separators=(",", ":"), sort_keys=True)
        self._json_decoder = (decoder or json.JSONDecoder)()
        self._encoding = encoding
        self._metadata_encoding = encoding.encode()
        self._custom_type_converters = tuple(custom_type_converters)

    @property
    def encoding(self) -> str:
        return self._encoding

    def to_payload(self, value: Any) -> Payload | None:
        return Payload({"encoding": self._metadata_encoding}, self._json_encoder.encode(value).encode())

    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        try:
            value = self._json_decoder.decode(payload.data.decode("utf-8"))
        except ValueError as e:
            raise PayloadError(
                f"{self._encoding} payload data is not valid JSON ({e}); the data must be base64 of UTF-8 JSON text"
            ) from None
        if type_hint:
            value = value_to_type(type_hint, value, self._custom_type_converters)
        return value


class DefaultPayloadConverter(CompositePayloadConverter):
    """``None``, ``bytes`` and everything JSON can carry (with dataclasses and type hints).

    temporalio's default also has protobuf converters; this engine has no protobuf types.
    """

    default_encoding_payload_converters: ClassVar[tuple[EncodingPayloadConverter, ...]] = (
        BinaryNullPayloadConverter(),
        BinaryPlainPayloadConverter(),
        JSONPlainPayloadConverter(),  # last: it accepts (or fails on) anything
    )

    def __init__(self) -> None:
        super().__init__(*self.default_encoding_payload_converters)


PayloadConverter.default = DefaultPayloadConverter()


# ---------------------------------------------------------------------- JSON form helpers
def to_json_payloads(converter: PayloadConverter, values: Sequence[Any], what: str) -> dict[str, Any]:
    """``{"payloads": [...]}`` in JSON form; ``what`` names the values in the error
    (``"argument of activity 'withdraw'"`` -> ``"argument 2 of activity 'withdraw'"``)."""
    plain = _plain_json_of(converter)
    if plain is not None:
        fast = [_plain_json_payload(plain, v) for v in values]
        if None not in fast:
            return {"payloads": fast}
    return {"payloads": [p.to_json() for p in _to_payloads(converter, values, what, numbered=True)]}


def to_json_payload(converter: PayloadConverter, value: Any, what: str) -> dict[str, Any]:
    plain = _plain_json_of(converter)
    if plain is not None:
        fast = _plain_json_payload(plain, value)
        if fast is not None:
            return fast
    return _to_payloads(converter, [value], what, numbered=False)[0].to_json()


# The default converter's usual case, without Payload objects or the converter chain: the
# same JSON text, the same JSON form. Anything unusual (None, bytes, a value JSON refuses,
# a malformed payload) returns None and takes the general path, with its error messages.
_PLAIN_TYPES = (str, int, float, bool, list, dict)
_orjson_loads = orjson.loads
_JSON_PLAIN_B64 = base64.b64encode(b"json/plain").decode("ascii")


def _plain_json_of(converter: PayloadConverter) -> JSONPlainPayloadConverter | None:
    """The JSON converter of an unmodified default converter (else None: no shortcut)."""
    if type(converter) is not DefaultPayloadConverter:
        return None
    found: Any = getattr(converter, "_plain_json", False)
    if found is False:
        kinds = [type(c) for c in converter.converters.values()]
        found = None
        if kinds == [BinaryNullPayloadConverter, BinaryPlainPayloadConverter, JSONPlainPayloadConverter]:
            found = converter.converters[b"json/plain"]
        converter._plain_json = found  # type: ignore[attr-defined]
    return found  # type: ignore[no-any-return]


def _plain_json_payload(plain: JSONPlainPayloadConverter, value: Any) -> dict[str, Any] | None:
    if type(value) not in _PLAIN_TYPES:
        return None
    try:
        text = plain._json_encoder.encode(value)
    except (TypeError, ValueError):
        return None
    return {"metadata": {"encoding": _JSON_PLAIN_B64}, "data": binascii.b2a_base64(text.encode(), newline=False).decode("ascii")}


def _plain_json_values(plain: JSONPlainPayloadConverter, raw: Sequence[Any], type_hints: Sequence[Any]) -> list[Any] | None:
    values = []
    for index, payload in enumerate(raw):
        try:
            metadata = payload["metadata"]
            if len(metadata) != 1 or metadata.get("encoding") != _JSON_PLAIN_B64:
                return None
            data = binascii.a2b_base64(payload["data"], strict_mode=True)
            try:
                # The default decoder's values, faster; what orjson refuses (NaN, integers
                # beyond 64 bits, lone surrogates) json reads as before.
                value = _orjson_loads(data) if plain._decoder is None else plain._json_decoder.decode(data.decode("utf-8"))
            except orjson.JSONDecodeError:
                value = plain._json_decoder.decode(data.decode("utf-8"))
        except (TypeError, ValueError, KeyError, AttributeError, binascii.Error):
            return None
        hint = type_hints[index] if index < len(type_hints) else None
        if hint is RawValue:
            return None
        if hint is not None and hint is not Any and type(value) is not hint:
            try:
                value = value_to_type(hint, value, plain._custom_type_converters)
            except (TypeError, ValueError):
                return None
        values.append(value)
    return values


def _to_payloads(converter: PayloadConverter, values: Sequence[Any], what: str, *, numbered: bool) -> list[Payload]:
    try:
        return converter.to_payloads(values)
    except Exception as e:  # noqa: BLE001 - any converter error becomes one clear message
        index = _failed_index(converter, values)
        name = _numbered(what, index) if numbered else what
        value = values[index] if index is not None else values[0] if values else None
        raise PayloadError(
            f"Cannot serialize {name}: {type(value).__name__} value {value!r:.80} is not "
            f"serializable ({e}). Workflow and activity inputs and results are stored in history "
            "as JSON: pass str/int/float/bool/None, lists, dicts, dataclasses, enums or datetimes "
            "(or give the client a data converter that handles this type)."
        ) from None


def _failed_index(converter: PayloadConverter, values: Sequence[Any]) -> int | None:
    for index, value in enumerate(values):
        try:
            converter.to_payloads([value])
        except Exception:  # noqa: BLE001 - only locating the culprit
            return index
    return None


def _numbered(what: str, index: int | None) -> str:
    if index is None:
        return what
    first, _, rest = what.partition(" ")
    return f"{first} {index + 1} {rest}".rstrip() if rest else f"{what} {index + 1}"


def from_json_payloads(
    converter: PayloadConverter, obj: Mapping[str, Any] | None, type_hints: Sequence[Any] = (), what: str = "argument"
) -> list[Any]:
    """The values of a ``{"payloads": [...]}`` object, shaped by ``type_hints``."""
    raw = obj.get("payloads") if obj else None
    if not raw:
        return []
    plain = _plain_json_of(converter)
    if plain is not None:
        fast = _plain_json_values(plain, raw, type_hints)
        if fast is not None:
            return fast
    payloads = [Payload.from_json(p) for p in raw]
    hints = list(type_hints[: len(payloads)]) if type_hints else None
    if hints and len(hints) < len(payloads):
        hints += [None] * (len(payloads) - len(hints))
    try:
        return converter.from_payloads(payloads, hints)
    except PayloadError as e:
        raise PayloadError(f"Cannot decode {what}: {e}") from None
    except (TypeError, ValueError) as e:
        raise PayloadError(
            f"Cannot convert {what} to its type hint: {e}. The payload was recorded with another "
            "shape: make the type hint match what is sent (old runs keep old shapes: give new "
            "dataclass fields defaults)."
        ) from None


def from_json_payload(converter: PayloadConverter, obj: Mapping[str, Any] | None, type_hint: Any = None, what: str = "value") -> Any:
    if not obj:
        return None
    return from_json_payloads(converter, {"payloads": [obj]}, (type_hint,), what)[0]


# ---------------------------------------------------------------------- encodings
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@functools.lru_cache(maxsize=256)
def _b64_small(data: bytes) -> str:
    # Metadata values ("json/plain", a key id) repeat on every payload.
    return _b64(data)


def _unb64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise PayloadError(f"{what} must be a base64 string, found {_json_kind(value)}")
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        pass
    # Proto JSON readers accept URL-safe and unpadded base64 too, so do the same.
    text = value.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as e:  # binascii.Error, or non-ASCII text
        raise PayloadError(f"{what} {value!r:.60} is not valid base64 ({e})") from None


def _json_kind(value: Any) -> str:
    # Name JSON kinds, not Python classes: the reader is looking at JSON.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _field(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _fields(data: bytes) -> list[tuple[int, bytes | int]]:
    """(field number, value) of a protobuf message; unknown wire types are skipped as protobuf does."""
    out: list[tuple[int, bytes | int]] = []
    pos, end = 0, len(data)

    def varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            if pos >= end:
                raise PayloadError("Truncated protobuf payload.")
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result

    while pos < end:
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            out.append((number, varint()))
        elif wire == 2:
            size = varint()
            if pos + size > end:
                raise PayloadError("Truncated protobuf payload.")
            out.append((number, bytes(data[pos : pos + size])))
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise PayloadError(f"Unsupported protobuf wire type {wire} in a payload.")
    return out
