"""Options shared by workflows, activities and clients (mirrors ``temporalio.common``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Mapping, Sequence

from engine._durations import from_duration, to_duration

__all__ = ["RetryPolicy", "WorkflowIDReusePolicy", "WorkflowIDConflictPolicy"]


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
        seconds = min(self.initial_interval.total_seconds() * self.backoff_coefficient ** (attempt - 2), cap.total_seconds())
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
