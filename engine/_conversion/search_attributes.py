"""Search attributes and memos in Temporal's payload form, and the rows that index them.

Search attribute payloads are always the default JSON converter's (the server reads them,
so no codec touches them), with the type in ``metadata.type`` as temporalio writes it:
``{"metadata": {"encoding": "json/plain", "type": "Keyword"}, "data": "\\"x\\""}`` (base64 in
the JSON form). An unset attribute is a ``binary/null`` payload that keeps the type.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

from engine.common import (
    SearchAttributeIndexedValueType,
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

CHANGE_VERSION = "TemporalChangeVersion"  # the attribute the SDK sets after each patch marker
_JSON_PLAIN = base64.b64encode(b"json/plain").decode()
_NULL = base64.b64encode(b"binary/null").decode()
_KIND = SearchAttributeIndexedValueType


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: Any) -> str:
    return base64.b64decode(str(text)).decode() if text else ""


def encode_value(key: SearchAttributeKey[Any], value: Any) -> dict[str, Any]:
    """One attribute's payload (JSON form); ``None`` unsets it."""
    if value is None:
        return {"metadata": {"encoding": _NULL, "type": _b64(key.metadata_type)}}
    key.check(value)
    if isinstance(value, datetime):
        value = value.isoformat()
    elif key.indexed_value_type == _KIND.KEYWORD_LIST:
        value = list(value)
    elif key.indexed_value_type == _KIND.DOUBLE:
        value = float(value)
    data = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return {"metadata": {"encoding": _JSON_PLAIN, "type": _b64(key.metadata_type)}, "data": _b64(data)}


def encode_typed(attributes: TypedSearchAttributes | None) -> dict[str, Any]:
    """``indexedFields`` of a ``searchAttributes`` object."""
    if attributes is None:
        return {}
    if isinstance(attributes, Mapping):  # temporalio's deprecated form, still accepted by it
        from engine._conversion import search_attributes_dict as _search_attributes_dict

        _search_attributes_dict.warn("search_attributes")
        attributes = _search_attributes_dict.typed_from_dict(attributes)
    if not isinstance(attributes, TypedSearchAttributes):
        raise TypeError(
            "search_attributes takes TypedSearchAttributes (or temporalio's deprecated dictionary form), e.g. "
            "TypedSearchAttributes([SearchAttributePair(SearchAttributeKey.for_keyword("
            f"'CustomKeywordField'), 'value')]); got {type(attributes).__name__}."
        )
    return {pair.key.name: encode_value(pair.key, pair.value) for pair in attributes}


def encode_updates(updates: Sequence[SearchAttributeUpdate[Any]]) -> dict[str, Any]:
    if isinstance(updates, Mapping) or not all(isinstance(u, SearchAttributeUpdate) for u in updates):
        raise TypeError(
            "upsert_search_attributes takes a list of updates, e.g. [key.value_set('x'), other_key.value_unset()] "
            "with keys from SearchAttributeKey.for_keyword(...) and the like (the dictionary form is not supported)."
        )
    return {u.key.name: encode_value(u.key, u.value) for u in updates}


def decode(name: str, payload: Mapping[str, Any]) -> tuple[SearchAttributeKey[Any] | None, Any]:
    """(key, value) of one attribute's payload; value None for an unset one, key None if untyped."""
    metadata = payload.get("metadata") or {}
    key = SearchAttributeKey.from_metadata_type(name, _unb64(metadata.get("type")))
    if key is None or _unb64(metadata.get("encoding")) != "json/plain" or not payload.get("data"):
        return key, None
    value = json.loads(_unb64(payload["data"]))
    kind = key.indexed_value_type
    if kind != _KIND.KEYWORD_LIST and isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    elif kind == _KIND.KEYWORD_LIST and isinstance(value, str):
        value = [value]
    if kind == _KIND.DATETIME and isinstance(value, str):
        value = parse_time(value)
    elif kind == _KIND.DOUBLE and type(value) is int:
        value = float(value)
    return key, value


def decode_typed(fields: Mapping[str, Any] | None) -> TypedSearchAttributes:
    pairs = []
    for name, payload in (fields or {}).items():
        key, value = decode(name, payload)
        if key is not None and value is not None:
            try:
                key.check(value)
            except (TypeError, ValueError):
                continue  # as temporalio: a value that does not fit its type is left out
            pairs.append(SearchAttributePair(key, value))
    return TypedSearchAttributes(pairs)


def parse_time(text: str) -> datetime:
    # fromisoformat in 3.11 takes at most 6 fraction digits and no "Z"; Temporal writes both.
    text = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def index_values(key: SearchAttributeKey[Any], value: Any) -> list[Any]:
    """What the index table holds for one attribute: numbers as numbers (compared as such),
    datetimes as epoch seconds, a keyword list one row per keyword."""
    kind = key.indexed_value_type
    if kind == _KIND.KEYWORD_LIST:
        return list(value)
    if kind == _KIND.DATETIME:
        return [value.timestamp()]
    if kind == _KIND.BOOL:
        return [int(value)]
    return [value]


def merged(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Payload maps (search attributes or memo fields) after an upsert: null payloads remove."""
    out = dict(current)
    for name, payload in changes.items():
        if _unb64((payload.get("metadata") or {}).get("encoding")) == "binary/null":
            out.pop(name, None)
        else:
            out[name] = payload
    return out


def change_version_update(patch_ids: Iterable[str]) -> dict[str, Any]:
    """The ``indexedFields`` the SDK upserts after a patch marker: every patch id so far, sorted
    (as temporalio writes them, measured on a dev server: tests/differential)."""
    return {CHANGE_VERSION: encode_value(SearchAttributeKey.for_keyword_list(CHANGE_VERSION), sorted(patch_ids))}


def shown_value(value: Any) -> str:
    """A search attribute or memo value as describe prints it (JSON, datetimes in ISO form)."""
    return json.dumps(value, ensure_ascii=False, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))


def shown_search_attributes(attributes: TypedSearchAttributes) -> list[tuple[str, str]]:
    return [(pair.key.name, shown_value(pair.value)) for pair in attributes]


async def shown_memo(description: Any) -> list[tuple[str, str]]:
    """A description's memo fields as text; one the data converter cannot read (encrypted, and
    no codec given) is shown as such rather than failing the whole describe."""
    shown = []
    for name in sorted(description.raw_memo):
        try:
            text = shown_value(await description.memo_value(name))
        except Exception as e:  # noqa: BLE001 - one unreadable field must not hide the others
            encoding = _unb64((description.raw_memo[name].get("metadata") or {}).get("encoding"))
            text = f"<{encoding or 'unreadable'} payload: {str(e).splitlines()[0] if str(e) else type(e).__name__}>"
        shown.append((name, text))
    return shown
