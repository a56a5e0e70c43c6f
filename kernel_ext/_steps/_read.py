"""Forgiving readers and formatters for history attributes.

Imported histories may hold anything (missing keys, strings where numbers belong, payloads
that do not decode), so every reader here returns an empty or placeholder value rather
than raising: a viewer must be able to show any history.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Mapping, Sequence

from engine.converter import Payload
from engine.errors import HistoryFormatError, PayloadError
from engine.history import decode_payload, decode_payloads

VALUE_LIMIT = 200


def dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def text_of(obj: Any, *keys: str) -> str:
    value = dig(obj, *keys)
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def int_of(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def one_line(text: str) -> str:
    return " ".join(text.split())


class Encoded:
    """A payload written by a payload codec (encrypted, compressed) that the viewer was not
    given: shown as such, never as bytes. Decode the history first to see the value
    (``await engine.converter.decode_history(history, data_converter)``)."""

    def __init__(self, encoding: str, size: int) -> None:
        self.encoding = encoding
        self.size = size

    def __str__(self) -> str:
        return "<encrypted>" if "encrypted" in self.encoding else f"<{self.encoding}: {self.size} bytes>"

    __repr__ = __str__


# What the payload converters of Temporal SDKs write; anything else came out of a codec.
_CONVERTER_ENCODINGS = frozenset({"json/plain", "binary/null", "binary/plain", "json/protobuf", "binary/protobuf"})


def display_value(payload: Any) -> Any:
    """A payload's value for display: decoded when a payload converter wrote it, else
    :class:`Encoded`. Raises ``HistoryFormatError`` for malformed payloads."""
    try:
        parsed = Payload.from_json(payload)
    except PayloadError:
        return decode_payload(payload)  # raises the history's clear error
    encoding = parsed.metadata.get("encoding", b"").decode("utf-8", "replace")
    if encoding and encoding not in _CONVERTER_ENCODINGS:
        return Encoded(encoding, len(parsed.data))
    return decode_payload(payload)


def _display_values(obj: Any) -> list[Any]:
    payloads = obj.get("payloads") if isinstance(obj, Mapping) else None
    if not isinstance(payloads, (list, tuple)):
        return decode_payloads(obj) if isinstance(obj, Mapping) else []
    return [display_value(p) for p in payloads]


def value_text(value: Any) -> str:
    if isinstance(value, Encoded):
        return str(value)
    if isinstance(value, list) and any(isinstance(v, Encoded) for v in value):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


def payloads_text(obj: Any, limit: int = VALUE_LIMIT) -> str:
    """The decoded values of a ``{"payloads": [...]}`` object, comma-separated."""
    try:
        values = _display_values(obj)
    except (HistoryFormatError, TypeError, ValueError) as exc:
        return shorten(f"<payload that cannot be decoded: {exc}>", limit)
    return shorten(", ".join(value_text(v) for v in values), limit)


def failure_message(failure: Any) -> str:
    """A failure's message, or ``<encrypted>`` when a payload codec sealed it into the failure's
    encoded attributes and the viewer was not given that codec."""
    attributes = dig(failure, "encodedAttributes")
    if isinstance(attributes, Mapping):
        try:
            sealed = display_value(attributes)
        except (HistoryFormatError, TypeError, ValueError):
            sealed = None
        if isinstance(sealed, Encoded):
            return str(sealed)
    return text_of(failure, "message")


def failure_messages(failure: Any) -> list[str]:
    """The messages of a Temporal failure and its causes, outermost first."""
    messages: list[str] = []
    while isinstance(failure, Mapping) and len(messages) < 10:
        message = failure_message(failure)
        if message:
            messages.append(message)
        failure = failure.get("cause")
    return messages


def failure_summary(failure: Any) -> str:
    """``message`` or ``message: root cause`` on one line."""
    messages = [m.splitlines()[0] if m.splitlines() else m for m in failure_messages(failure)]
    if not messages:
        return ""
    if len(messages) > 1 and messages[-1] != messages[0]:
        return f"{messages[0]}: {messages[-1]}"
    return messages[0]


def format_seconds(seconds: float) -> str:
    """``86400`` -> ``"1d"``, ``90`` -> ``"1m30s"``, ``1.5`` -> ``"1.5s"``."""
    if seconds < 0:
        return "-" + format_seconds(-seconds)
    if seconds < 60 and seconds != int(seconds):
        return f"{seconds:.3g}s" if seconds >= 1 else f"{seconds * 1000:.3g}ms"
    rest = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, rest = divmod(rest, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"


_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)s\s*$")


def format_duration(value: Any) -> str:
    """A protobuf JSON duration (``"86400s"``) in human form (``"1d"``); unknown forms as is."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_seconds(float(value))
    text = "" if value is None else str(value)
    match = _DURATION.match(text)
    return format_seconds(float(match.group(1))) if match else text


def seconds_between(earlier: Any, later: Any) -> float | None:
    """Seconds from ``earlier`` to ``later``, or None if they are not comparable times."""
    if not isinstance(earlier, datetime) or not isinstance(later, datetime):
        return None
    try:
        return (later - earlier).total_seconds()
    except TypeError:  # naive and aware datetimes mixed
        return None


def format_offset(seconds: float | None) -> str:
    """Time since the run started as ``[Nd ]HH:MM:SS.mmm`` (``""`` if unknown)."""
    if seconds is None:
        return ""
    sign = "-" if seconds < 0 else ""
    millis = round(abs(seconds) * 1000)
    days, millis = divmod(millis, 86_400_000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"
    return f"{sign}{days}d {text}" if days else sign + text


def format_event_ids(ids: Sequence[int], *, span: bool = False) -> str:
    """``[5, 6, 7]`` -> ``"events 5-7"``; ``span=True`` gives just ``first-last``."""
    unique = sorted(set(ids))
    if not unique:
        return ""
    if len(unique) == 1:
        return f"event {unique[0]}"
    if span:
        return f"events {unique[0]}-{unique[-1]}"
    ranges: list[tuple[int, int]] = []
    for event_id in unique:
        if ranges and event_id == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], event_id)
        else:
            ranges.append((event_id, event_id))
    texts = [f"{a}-{b}" if a != b else str(a) for a, b in ranges]
    if len(texts) > 3:
        texts = texts[:2] + ["…", texts[-1]]
    return "events " + ", ".join(texts)


def payload_values(obj: Any) -> list[Any]:
    """The decoded values of a ``{"payloads": [...]}`` object; ``[]`` if there are none or
    they cannot be decoded."""
    if not isinstance(obj, Mapping):
        return []
    try:
        return list(decode_payloads(obj))
    except (HistoryFormatError, TypeError, ValueError):
        return []


def payload_value(obj: Any) -> Any:
    """The decoded value of one payload (``{"metadata": ..., "data": ...}``), or None."""
    values = payload_values({"payloads": [obj]}) if isinstance(obj, Mapping) else []
    return values[0] if values else None
