"""Options shared by workflows, activities and clients (mirrors ``temporalio.common``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Collection, Generic, Iterator, Mapping, NamedTuple, Sequence, TypeVar, Union

from engine._api.durations import from_duration, to_duration

if TYPE_CHECKING:
    from engine.converter import Payload

__all__ = [
    "RetryPolicy",
    "WorkflowIDReusePolicy",
    "WorkflowIDConflictPolicy",
    "SearchAttributeIndexedValueType",
    "SearchAttributeKey",
    "SearchAttributePair",
    "SearchAttributeUpdate",
    "SearchAttributeValue",
    "TypedSearchAttributes",
    "RawValue",
]


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed activity (or workflow) is retried.

    Defaults are Temporal's: first retry after 1 s, each next delay doubled, delays capped at
    100 x ``initial_interval`` when ``maximum_interval`` is unset, unlimited attempts
    (``maximum_attempts=0``).
    """

    initial_interval: timedelta = timedelta(seconds=1)
    backoff_coefficient: float = 2.0
    maximum_interval: timedelta | None = None
    maximum_attempts: int = 0
    non_retryable_error_types: Sequence[str] | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.initial_interval <= timedelta(0):
            problems.append("initial_interval must be positive")
        if self.backoff_coefficient < 1.0:
            problems.append("backoff_coefficient must be at least 1.0")
        if self.maximum_interval is not None and self.maximum_interval < self.initial_interval:
            problems.append("maximum_interval must not be below initial_interval")
        if self.maximum_attempts < 0:
            problems.append("maximum_attempts must be 0 (unlimited) or more")
        if isinstance(self.non_retryable_error_types, str):
            problems.append("non_retryable_error_types must be a list of names, not one string")
        if problems:
            raise ValueError("Invalid RetryPolicy: " + "; ".join(problems))

    def delay_before_attempt(self, attempt: int) -> timedelta:
        """The wait before ``attempt`` (2, 3, ...) following a failed ``attempt - 1``."""
        cap = self.maximum_interval or self.initial_interval * 100
        # Capped in seconds: past attempt ~50 the uncapped delay no longer fits a timedelta.
        try:
            seconds = min(self.initial_interval.total_seconds() * self.backoff_coefficient ** (attempt - 2), cap.total_seconds())
        except OverflowError:  # past attempt ~1,000 (coefficient 2) the float power overflows: long capped
            seconds = cap.total_seconds()
        return timedelta(seconds=seconds)

    def allows_attempt(self, attempt: int) -> bool:
        return self.maximum_attempts == 0 or attempt <= self.maximum_attempts

    def is_retryable(self, error_type: str | None) -> bool:
        return not (error_type and error_type in (self.non_retryable_error_types or ()))

    def to_json(self) -> dict[str, Any]:
        """Temporal's JSON shape (as in ``ActivityTaskScheduled.retryPolicy``)."""
        return {
            "initialInterval": to_duration(self.initial_interval),
            "backoffCoefficient": self.backoff_coefficient,
            "maximumInterval": to_duration(self.maximum_interval or self.initial_interval * 100),
            "maximumAttempts": self.maximum_attempts,
            "nonRetryableErrorTypes": list(self.non_retryable_error_types or ()),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "RetryPolicy":
        if not data:
            return cls()
        maximum = from_duration(data.get("maximumInterval"))
        return cls(
            initial_interval=from_duration(data.get("initialInterval")) or timedelta(seconds=1),
            backoff_coefficient=float(data.get("backoffCoefficient") or 2.0),
            maximum_interval=maximum or None,
            maximum_attempts=int(data.get("maximumAttempts") or 0),
            non_retryable_error_types=list(data.get("nonRetryableErrorTypes") or ()),
        )


class WorkflowIDReusePolicy(enum.IntEnum):
    UNSPECIFIED = 0
    ALLOW_DUPLICATE = 1
    ALLOW_DUPLICATE_FAILED_ONLY = 2
    REJECT_DUPLICATE = 3
    TERMINATE_IF_RUNNING = 4


class WorkflowIDConflictPolicy(enum.IntEnum):
    UNSPECIFIED = 0
    FAIL = 1
    USE_EXISTING = 2
    TERMINATE_EXISTING = 3


# ------------------------------------------------------------------------ search attributes
SearchAttributeValue = Union[str, int, float, bool, datetime, Sequence[str]]
SearchAttributeValueType = TypeVar("SearchAttributeValueType", str, int, float, bool, datetime, Sequence[str])


class SearchAttributeIndexedValueType(enum.IntEnum):
    """How a search attribute is indexed (Temporal's ``IndexedValueType``)."""

    TEXT = 1
    KEYWORD = 2
    INT = 3
    DOUBLE = 4
    BOOL = 5
    DATETIME = 6
    KEYWORD_LIST = 7


# The name written in a payload's ``metadata.type``, and the Python type of a value.
_TYPE_NAMES = {
    SearchAttributeIndexedValueType.TEXT: ("Text", str),
    SearchAttributeIndexedValueType.KEYWORD: ("Keyword", str),
    SearchAttributeIndexedValueType.INT: ("Int", int),
    SearchAttributeIndexedValueType.DOUBLE: ("Double", float),
    SearchAttributeIndexedValueType.BOOL: ("Bool", bool),
    SearchAttributeIndexedValueType.DATETIME: ("Datetime", datetime),
    SearchAttributeIndexedValueType.KEYWORD_LIST: ("KeywordList", Sequence),
}
_BY_TYPE_NAME = {name: kind for kind, (name, _) in _TYPE_NAMES.items()}


@dataclass(frozen=True)
class SearchAttributeKey(Generic[SearchAttributeValueType]):
    """A typed search attribute name: make one with ``SearchAttributeKey.for_keyword("CustomKeywordField")``
    and the like, then ``key.value_set(v)`` / ``key.value_unset()`` for upserts, or
    ``SearchAttributePair(key, v)`` for ``TypedSearchAttributes``."""

    name: str
    indexed_value_type: SearchAttributeIndexedValueType

    @property
    def origin_value_type(self) -> type:
        """The Python type of this key's values (``Sequence`` for a keyword list)."""
        return _TYPE_NAMES[self.indexed_value_type][1]

    @property
    def value_type(self) -> type:
        return self.origin_value_type

    @property
    def metadata_type(self) -> str:
        """The type name Temporal writes in the payload's ``metadata.type`` (``"Keyword"``...)."""
        return _TYPE_NAMES[self.indexed_value_type][0]

    def value_set(self, value: SearchAttributeValueType) -> "SearchAttributeUpdate[SearchAttributeValueType]":
        """An update that sets this attribute to ``value``."""
        return SearchAttributeUpdate(self, value)

    def value_unset(self) -> "SearchAttributeUpdate[SearchAttributeValueType]":
        """An update that removes this attribute."""
        return SearchAttributeUpdate(self, None)

    @staticmethod
    def for_text(name: str) -> "SearchAttributeKey[str]":
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.TEXT)

    @staticmethod
    def for_keyword(name: str) -> "SearchAttributeKey[str]":
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.KEYWORD)

    @staticmethod
    def for_int(name: str) -> "SearchAttributeKey[int]":
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.INT)

    @staticmethod
    def for_float(name: str) -> "SearchAttributeKey[float]":
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.DOUBLE)

    @staticmethod
    def for_bool(name: str) -> "SearchAttributeKey[bool]":
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.BOOL)

    @staticmethod
    def for_datetime(name: str) -> "SearchAttributeKey[datetime]":
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.DATETIME)

    @staticmethod
    def for_keyword_list(name: str) -> "SearchAttributeKey[Sequence[str]]":
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.KEYWORD_LIST)

    @staticmethod
    def from_metadata_type(name: str, metadata_type: str) -> "SearchAttributeKey[Any] | None":
        """The key for a payload's ``metadata.type`` (``"Int"`` or ``"INDEXED_VALUE_TYPE_INT"``), else None."""
        kind = _BY_TYPE_NAME.get(metadata_type)
        if kind is None and metadata_type.startswith("INDEXED_VALUE_TYPE_"):
            kind = SearchAttributeIndexedValueType.__members__.get(metadata_type[len("INDEXED_VALUE_TYPE_"):])
        return SearchAttributeKey(name, kind) if kind is not None else None

    def check(self, value: Any) -> None:
        """Raise a clear error if ``value`` does not suit this key."""
        kind = self.indexed_value_type
        if kind == SearchAttributeIndexedValueType.KEYWORD_LIST:
            good = isinstance(value, Sequence) and not isinstance(value, str) and all(isinstance(v, str) for v in value)
        elif kind == SearchAttributeIndexedValueType.DOUBLE:
            good = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif kind == SearchAttributeIndexedValueType.INT:
            good = isinstance(value, int) and not isinstance(value, bool)
        else:
            good = isinstance(value, self.origin_value_type)
        if not good:
            wanted = "a list of strings" if kind == SearchAttributeIndexedValueType.KEYWORD_LIST else self.origin_value_type.__name__
            raise TypeError(
                f"Search attribute {self.name!r} has type {self.metadata_type}: its value must be {wanted}, "
                f"not {type(value).__name__} {value!r}."
            )
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError(
                f"Search attribute {self.name!r}: the datetime {value!r} has no time zone; give one, "
                "e.g. datetime(2024, 5, 1, tzinfo=timezone.utc)."
            )


class SearchAttributePair(NamedTuple, Generic[SearchAttributeValueType]):
    """A search attribute key with its value, for ``TypedSearchAttributes``."""

    key: SearchAttributeKey[SearchAttributeValueType]
    value: SearchAttributeValueType


@dataclass(frozen=True)
class SearchAttributeUpdate(Generic[SearchAttributeValueType]):
    """A change for ``workflow.upsert_search_attributes``: a value to set, or None to unset."""

    key: SearchAttributeKey[SearchAttributeValueType]
    value: SearchAttributeValueType | None


@dataclass(frozen=True)
class TypedSearchAttributes(Collection[SearchAttributePair]):
    """An immutable set of search attribute pairs, sorted by name, each name once.

    ``TypedSearchAttributes([SearchAttributePair(SearchAttributeKey.for_keyword("CustomKeywordField"), "x")])``;
    read with ``attrs[key]`` or ``attrs.get(key)``."""

    search_attributes: Sequence[SearchAttributePair]

    empty: ClassVar["TypedSearchAttributes"]

    def __post_init__(self) -> None:
        pairs = []
        for pair in self.search_attributes:
            if not isinstance(pair, SearchAttributePair) and isinstance(pair, SearchAttributeUpdate):
                raise TypeError(
                    f"TypedSearchAttributes takes SearchAttributePair(key, value), not an update "
                    f"(key.value_set(...)): write SearchAttributePair(key, {pair.value!r}) for {pair.key.name!r}."
                )
            if not isinstance(pair, tuple) or len(pair) != 2 or not isinstance(pair[0], SearchAttributeKey):
                raise TypeError(f"TypedSearchAttributes takes SearchAttributePair(key, value) items, not {pair!r}.")
            pair[0].check(pair[1])
            pairs.append(SearchAttributePair(*pair))
        pairs.sort(key=lambda p: p.key.name)
        for before, after in zip(pairs, pairs[1:]):
            if before.key.name == after.key.name:
                raise ValueError(f"Search attribute {after.key.name!r} is given twice; give each name once.")
        object.__setattr__(self, "search_attributes", tuple(pairs))

    def __len__(self) -> int:
        return len(self.search_attributes)

    def __iter__(self) -> Iterator[SearchAttributePair]:
        return iter(self.search_attributes)

    def __contains__(self, key: object) -> bool:
        return any(pair.key == key for pair in self.search_attributes)

    def __getitem__(self, key: SearchAttributeKey[SearchAttributeValueType]) -> SearchAttributeValueType:
        for pair in self.search_attributes:
            if pair.key == key:
                return pair.value  # type: ignore[no-any-return]
        raise KeyError(key.name)

    def get(self, key: SearchAttributeKey[SearchAttributeValueType], default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def updated(self, *pairs: SearchAttributePair) -> "TypedSearchAttributes":
        """A copy with these pairs set (replacing pairs of the same name)."""
        names = {pair.key.name for pair in pairs}
        return TypedSearchAttributes([p for p in self.search_attributes if p.key.name not in names] + list(pairs))

    def without(self, name: str) -> "TypedSearchAttributes":
        """A copy without the attribute called ``name``."""
        return TypedSearchAttributes([p for p in self.search_attributes if p.key.name != name])


TypedSearchAttributes.empty = TypedSearchAttributes(())


@dataclass(frozen=True)
class RawValue:
    """A payload left unconverted (as ``temporalio.common.RawValue``).

    A dynamic signal, query or update handler gets its arguments as a sequence of these and
    converts each itself (``workflow.payload_converter().from_payload(raw.payload, int)``); a
    ``RawValue`` given as an argument or result is passed through as the payload it holds."""

    payload: Payload
