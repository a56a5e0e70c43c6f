"""Sagas: undo completed steps, in reverse, when a later step fails (the seed's trip booking).

Used inside workflow code::

    saga = Saga(parallel_compensation=False)
    try:
        car = await workflow.execute_activity(reserve_car, name, start_to_close_timeout=T)
        saga.add_compensation(cancel_car, car)
        ...
    except ActivityError:
        await saga.compensate()
        raise

Compensations that are activities run as activities whose summary starts with
``"compensation"``, so that history viewers can draw each one against the step it undoes.
Because the saga lives in workflow code, a crash in the middle of compensating resumes by
replay exactly where it stopped: no compensation runs twice once it has completed.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from engine import workflow
from engine.common import RetryPolicy
from engine.errors import ApplicationError

__all__ = ["Saga", "CompensationError"]


class CompensationError(ApplicationError):
    """Some compensations failed; ``errors`` holds each failure (with ``continue_with_error``).

    It is an ``ApplicationError``: left uncaught, it fails the workflow (the trip could not be
    fully undone, a person must look) instead of retrying the workflow task."""

    def __init__(self, errors: list[BaseException]) -> None:
        super().__init__(
            f"{len(errors)} compensation(s) failed: " + "; ".join(str(e) for e in errors), type="CompensationError"
        )
        self.errors = errors


@dataclass
class _Compensation:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        defn = getattr(self.fn, "__activity_definition__", None)
        return defn.name if defn is not None else getattr(self.fn, "__name__", repr(self.fn))


class Saga:
    """Collects compensations as steps succeed and runs them in reverse on ``compensate()``."""

    def __init__(self, *, parallel_compensation: bool = False, continue_with_error: bool = False) -> None:
        self.parallel_compensation = parallel_compensation
        self.continue_with_error = continue_with_error
        self._compensations: list[_Compensation] = []

    def add_compensation(
        self,
        fn: Callable[..., Any],
        *args: Any,
        start_to_close_timeout: timedelta = timedelta(minutes=1),
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        """Remember how to undo the step that just succeeded.

        ``fn`` is an activity (run as one, with the timeout and retry policy given) or a
        plain or ``async`` function of workflow code."""
        options = {"start_to_close_timeout": start_to_close_timeout, "retry_policy": retry_policy}
        self._compensations.append(_Compensation(fn, args, options))

    @property
    def compensations(self) -> list[str]:
        """The names of the registered compensations, in the order they were added."""
        return [c.name for c in self._compensations]

    async def compensate(self) -> None:
        """Run the compensations, last added first (all at once with ``parallel_compensation``).

        Without ``continue_with_error`` the first failure stops the rest and is raised; with
        it, every compensation is tried and ``CompensationError`` lists the failures."""
        pending = list(reversed(self._compensations))
        self._compensations.clear()
        total = len(pending)
        errors: list[BaseException] = []
        if self.parallel_compensation:
            outcomes = await asyncio.gather(*(self._run(c, total - i) for i, c in enumerate(pending)), return_exceptions=True)
            errors = [o for o in outcomes if isinstance(o, BaseException)]
            if errors and not self.continue_with_error:
                raise errors[0]
        else:
            # One coroutine at a time: made ahead, those after a crash or eviction (which
            # ends the workflow's code mid-compensation) would never be awaited.
            for i, compensation in enumerate(pending):
                try:
                    await self._run(compensation, total - i)
                except Exception as e:  # noqa: BLE001 - collected or re-raised below
                    if not self.continue_with_error:
                        raise
                    errors.append(e)
        if errors:
            raise CompensationError(errors)

    async def _run(self, compensation: _Compensation, number: int) -> Any:
        fn, args = compensation.fn, compensation.args
        if getattr(fn, "__activity_definition__", None) is not None:
            return await workflow.execute_activity(
                fn, args=list(args), summary=f"compensation {number}: {compensation.name}", **compensation.options
            )
        result = fn(*args)
        if inspect.isawaitable(result):
            result = await result
        return result
