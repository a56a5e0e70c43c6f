"""Temporal's Schedules API, client side (issue 11, item 7): the classes of
``temporalio.client`` (``Schedule``, ``ScheduleActionStartWorkflow``, ``ScheduleSpec``,
``ScheduleIntervalSpec``, ``ScheduleState``, ``SchedulePolicy``, ...) and ``ScheduleHandle``.

A schedule starts a workflow at each time its spec gives (intervals and cron expressions),
unless paused. The engine's clock drives it (its next time is a timer, so time skipping
skips to it), and each start commits in the same transaction as the schedule's bookkeeping
(engine/_history/schedules.py; its times, calendars and jitter: engine/_history/schedule_specs.py).
What is not supported says so when the schedule is made: time zones other than UTC, and the
overlap policies BUFFER_ONE, BUFFER_ALL and CANCEL_OTHER (SKIP, ALLOW_ALL and TERMINATE_OTHER work).
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Mapping, Sequence

from engine._history import schedule_specs as specs
from engine._history import schedules as svc
from engine._history.cron import parse_cron
from engine._sandbox.translation import workflow_definition

if TYPE_CHECKING:
    from engine.client import Client


class ScheduleOverlapPolicy(enum.IntEnum):
    """What a schedule does when its previous workflow still runs (temporalio's values)."""

    SKIP = 1
    BUFFER_ONE = 2
    BUFFER_ALL = 3
    CANCEL_OTHER = 4
    TERMINATE_OTHER = 5
    ALLOW_ALL = 6


@dataclasses.dataclass
class ScheduleIntervalSpec:
    """Every ``every`` since the epoch, moved by ``offset``."""

    every: timedelta
    offset: timedelta | None = None


@dataclasses.dataclass(frozen=True)
class ScheduleRange:
    """The values ``start`` to ``end`` (inclusive; ``end`` below ``start`` means ``start``),
    every ``step`` (0 means 1), as temporalio's."""

    start: int
    end: int = 0
    step: int = 0

    def __post_init__(self) -> None:
        if self.end < self.start:
            object.__setattr__(self, "end", self.start)
        if self.step == 0:
            object.__setattr__(self, "step", 1)


@dataclasses.dataclass(frozen=True)
class ScheduleCalendarSpec:
    """The times whose second, minute, hour, day of month, month, year and day of week (0 is
    Sunday) are all in the given ranges (UTC); by default each day at midnight."""

    second: Sequence[ScheduleRange] = (ScheduleRange(0),)
    minute: Sequence[ScheduleRange] = (ScheduleRange(0),)
    hour: Sequence[ScheduleRange] = (ScheduleRange(0),)
    day_of_month: Sequence[ScheduleRange] = (ScheduleRange(1, 31),)
    month: Sequence[ScheduleRange] = (ScheduleRange(1, 12),)
    year: Sequence[ScheduleRange] = ()
    day_of_week: Sequence[ScheduleRange] = (ScheduleRange(0, 6),)
    comment: str | None = None


@dataclasses.dataclass(frozen=True)
class ScheduleBackfill:
    """``handle.backfill(...)``: the actions of the schedule's times from ``start_at`` to
    ``end_at``, taken now, with ``overlap`` (default: the schedule's policy)."""

    start_at: datetime
    end_at: datetime
    overlap: ScheduleOverlapPolicy | None = None


@dataclasses.dataclass
class ScheduleSpec:
    """When actions happen: the union of the times of ``calendars``, ``intervals`` and
    ``cron_expressions``, less those ``skip`` matches, between ``start_at`` and ``end_at``,
    each delayed by up to ``jitter``."""

    calendars: Sequence[Any] = dataclasses.field(default_factory=list)
    intervals: Sequence[ScheduleIntervalSpec] = dataclasses.field(default_factory=list)
    cron_expressions: Sequence[str] = dataclasses.field(default_factory=list)
    skip: Sequence[Any] = dataclasses.field(default_factory=list)
    start_at: datetime | None = None
    end_at: datetime | None = None
    jitter: timedelta | None = None
    time_zone_name: str | None = None


class ScheduleAction:
    """What a schedule does at each time (only starting a workflow, as in temporalio)."""


class ScheduleActionStartWorkflow(ScheduleAction):
    """Start ``workflow`` with ``args``; the run's id is ``id`` plus the scheduled time."""

    def __init__(
        self,
        workflow: str | Callable[..., Any],
        arg: Any = svc.UNSET,
        *,
        args: Sequence[Any] = (),
        id: str,
        task_queue: str,
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        memo: Mapping[str, Any] | None = None,
        **_ignored: Any,
    ) -> None:
        self.workflow = workflow if isinstance(workflow, str) else workflow_definition(workflow).name
        self.args: Sequence[Any] = ([arg] if arg is not svc.UNSET else []) + list(args)
        self.id = id
        self.task_queue = task_queue
        self.execution_timeout = execution_timeout
        self.run_timeout = run_timeout
        self.task_timeout = task_timeout
        self.memo = dict(memo) if memo else None

    def __repr__(self) -> str:
        return f"ScheduleActionStartWorkflow(workflow={self.workflow!r}, id={self.id!r}, task_queue={self.task_queue!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ScheduleActionStartWorkflow) and vars(self) == vars(other)


@dataclasses.dataclass
class SchedulePolicy:
    overlap: ScheduleOverlapPolicy = ScheduleOverlapPolicy.SKIP
    catchup_window: timedelta | None = None
    pause_on_failure: bool = False


@dataclasses.dataclass
class ScheduleState:
    note: str | None = None
    paused: bool = False
    limited_actions: bool = False
    remaining_actions: int = 0


@dataclasses.dataclass
class Schedule:
    """A schedule: its action, its spec, its policy and its state."""

    action: ScheduleAction
    spec: ScheduleSpec
    policy: SchedulePolicy = dataclasses.field(default_factory=SchedulePolicy)
    state: ScheduleState = dataclasses.field(default_factory=ScheduleState)


@dataclasses.dataclass(frozen=True)
class ScheduleActionExecutionStartWorkflow:
    workflow_id: str
    first_execution_run_id: str


@dataclasses.dataclass(frozen=True)
class ScheduleActionResult:
    scheduled_at: datetime
    started_at: datetime
    action: ScheduleActionExecutionStartWorkflow


@dataclasses.dataclass(frozen=True)
class ScheduleInfo:
    num_actions: int
    num_actions_missed_catchup_window: int
    num_actions_skipped_overlap: int
    running_actions: Sequence[ScheduleActionExecutionStartWorkflow]
    recent_actions: Sequence[ScheduleActionResult]
    next_action_times: Sequence[datetime]
    created_at: datetime
    last_updated_at: datetime | None


@dataclasses.dataclass(frozen=True)
class ScheduleDescription:
    """What ``ScheduleHandle.describe()`` returns."""

    id: str
    schedule: Schedule
    info: ScheduleInfo


@dataclasses.dataclass(frozen=True)
class ScheduleListDescription:
    """One schedule of ``client.list_schedules()``."""

    id: str
    schedule: Schedule
    info: ScheduleInfo


@dataclasses.dataclass(frozen=True)
class ScheduleUpdateInput:
    description: ScheduleDescription


@dataclasses.dataclass(frozen=True)
class ScheduleUpdate:
    schedule: Schedule


def check(schedule: Schedule) -> None:
    """Refuse, in one line each, what this engine does not do."""
    spec = schedule.spec
    if not isinstance(schedule.action, ScheduleActionStartWorkflow):
        raise TypeError("A schedule's action must be a ScheduleActionStartWorkflow (the only action Temporal has).")
    for calendar in [*spec.calendars, *spec.skip]:
        if not isinstance(calendar, ScheduleCalendarSpec):
            raise TypeError(f"ScheduleSpec.calendars and .skip take ScheduleCalendarSpec objects, not {type(calendar).__name__}.")
        specs.check_calendar(_calendar_json(calendar))
    if spec.jitter is not None and spec.jitter < timedelta(0):
        raise ValueError(f"ScheduleSpec.jitter must not be negative (got {spec.jitter}).")
    if spec.time_zone_name and spec.time_zone_name != "UTC":
        raise ValueError("ScheduleSpec.time_zone_name is not supported: put 'CRON_TZ=<zone> ' before each cron expression.")
    if not spec.intervals and not spec.cron_expressions and not spec.calendars:
        raise ValueError(
            "A ScheduleSpec needs calendars=[ScheduleCalendarSpec(...)], intervals=[ScheduleIntervalSpec(every=...)] "
            "or cron_expressions=['...']."
        )
    for interval in spec.intervals:
        if interval.every.total_seconds() < 1:
            raise ValueError(f"ScheduleIntervalSpec(every={interval.every}) must be at least one second.")
    for expression in spec.cron_expressions:
        parse_cron(expression)
    check_overlap(schedule.policy.overlap)


_OVERLAPS = (ScheduleOverlapPolicy.SKIP, ScheduleOverlapPolicy.ALLOW_ALL, ScheduleOverlapPolicy.TERMINATE_OTHER)


def check_overlap(overlap: ScheduleOverlapPolicy | None) -> None:
    if overlap is not None and overlap not in _OVERLAPS:
        raise ValueError(
            f"Overlap policy {ScheduleOverlapPolicy(overlap).name} is not supported by this engine (it would wait for the "
            "open run to close): use SKIP (the default), ALLOW_ALL or TERMINATE_OTHER."
        )


def _calendar_json(calendar: ScheduleCalendarSpec) -> dict[str, Any]:
    return {name: [[r.start, r.end, r.step] for r in getattr(calendar, name)] for name in specs.FIELDS} | {"comment": calendar.comment}


def _calendar_of(data: Mapping[str, Any]) -> ScheduleCalendarSpec:
    ranges = {name: tuple(ScheduleRange(*r) for r in data.get(name, ())) for name in specs.FIELDS}
    return ScheduleCalendarSpec(**ranges, comment=data.get("comment"))


class ScheduleHandle:
    """A schedule by its id: describe, pause, unpause, trigger, update, delete it."""

    def __init__(self, client: Client, id: str) -> None:
        self._client = client
        self.id = id

    def __repr__(self) -> str:
        return f"<ScheduleHandle id={self.id!r}>"

    async def describe(self, **_rpc: Any) -> ScheduleDescription:
        row = await self._client.store.read(svc.read_one, self.id)
        return await _description(self._client, row, ScheduleDescription)

    async def pause(self, *, note: str | None = None, **_rpc: Any) -> None:
        await self._client.store.run(svc.set_paused, self.id, True, note or "Paused via Python SDK", self._client.clock.now())

    async def unpause(self, *, note: str | None = None, **_rpc: Any) -> None:
        await self._client.store.run(svc.set_paused, self.id, False, note or "Unpaused via Python SDK", self._client.clock.now())

    async def trigger(self, *, overlap: ScheduleOverlapPolicy | None = None, **_rpc: Any) -> None:
        """Take the action now (also when paused)."""
        self._client._ensure_service()
        await self._client.store.run(svc.trigger, self.id, int(overlap) if overlap else None, self._client.clock.now())

    async def update(
        self, updater: Callable[[ScheduleUpdateInput], ScheduleUpdate | None | Awaitable[ScheduleUpdate | None]], **_rpc: Any
    ) -> None:
        """Change the schedule: ``updater`` gets its description and returns a
        ``ScheduleUpdate`` (or None to leave it)."""
        answer = updater(ScheduleUpdateInput(await self.describe()))
        if inspect.isawaitable(answer):
            answer = await answer
        if answer is None:
            return
        check(answer.schedule)
        encoded = await encode(self._client, answer.schedule)
        await self._client.store.run(svc.replace, self.id, encoded, self._client.clock.now())

    async def backfill(self, *backfill: ScheduleBackfill, **_rpc: Any) -> None:
        """Take the actions of the schedule's times in each range now (also when paused)."""
        if not backfill:
            raise ValueError("backfill needs at least one ScheduleBackfill(start_at=..., end_at=...).")
        for one in backfill:
            check_overlap(one.overlap)
            if one.end_at < one.start_at:
                raise ValueError(f"ScheduleBackfill ends ({one.end_at}) before it starts ({one.start_at}).")
        ranges = [(b.start_at.timestamp(), b.end_at.timestamp(), int(b.overlap) if b.overlap else None) for b in backfill]
        self._client._ensure_service()
        await self._client.store.run(svc.backfill, self.id, ranges, self._client.clock.now())

    async def delete(self, **_rpc: Any) -> None:
        await self._client.store.run(svc.delete, self.id)


async def encode(client: Client, schedule: Schedule) -> dict[str, Any]:
    """The schedule as the JSON the store keeps (arguments and memo through the converter)."""
    action = schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    converter = client.data_converter
    spec = schedule.spec
    return {
        "spec": {
            "intervals": [{"every": i.every.total_seconds(), "offset": (i.offset or timedelta()).total_seconds()} for i in spec.intervals],
            "cron": list(spec.cron_expressions),
            "start_at": spec.start_at.timestamp() if spec.start_at else None,
            "end_at": spec.end_at.timestamp() if spec.end_at else None,
            "calendars": [_calendar_json(c) for c in spec.calendars],
            "skip": [_calendar_json(c) for c in spec.skip],
            "jitter": spec.jitter.total_seconds() if spec.jitter else None,
        },
        "action": {
            "workflow": action.workflow,
            "args": await converter._encode_json(list(action.args), f"argument of scheduled workflow {action.workflow!r}"),
            "id": action.id,
            "task_queue": action.task_queue,
            "execution_timeout": action.execution_timeout.total_seconds() if action.execution_timeout else None,
            "run_timeout": action.run_timeout.total_seconds() if action.run_timeout else None,
            "task_timeout": action.task_timeout.total_seconds() if action.task_timeout else None,
            "memo": {k: (await converter._encode_json([v], f"memo field {k!r}", numbered=False))["payloads"][0] for k, v in (action.memo or {}).items()} or None,
        },
        "policy": {"overlap": int(schedule.policy.overlap)},
        "state": {
            "paused": schedule.state.paused,
            "note": schedule.state.note,
            "limited_actions": schedule.state.limited_actions,
            "remaining_actions": schedule.state.remaining_actions,
        },
    }


async def _description(client: Client, row: svc.ScheduleRow, kind: Any) -> Any:
    from engine._history.mutable_state import from_ts

    spec, action, policy, state, info = row.spec, row.action, row.policy, row.state, row.info
    converter = client.data_converter
    args = await converter._decode_json(action["args"], [None] * len(action["args"].get("payloads", [])), "scheduled workflow arguments")
    memo = {k: (await converter._decode_json({"payloads": [p]}, [None], f"memo field {k!r}"))[0] for k, p in (action.get("memo") or {}).items()}

    def seconds(value: float | None) -> timedelta | None:
        return timedelta(seconds=value) if value is not None else None

    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            action["workflow"], args=args, id=action["id"], task_queue=action["task_queue"],
            execution_timeout=seconds(action.get("execution_timeout")), run_timeout=seconds(action.get("run_timeout")),
            task_timeout=seconds(action.get("task_timeout")), memo=memo or None,
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(timedelta(seconds=i["every"]), timedelta(seconds=i["offset"]) if i["offset"] else None) for i in spec["intervals"]],
            cron_expressions=list(spec["cron"]),
            calendars=[_calendar_of(c) for c in spec.get("calendars", ())],
            skip=[_calendar_of(c) for c in spec.get("skip", ())],
            jitter=seconds(spec.get("jitter")),
            start_at=from_ts(spec["start_at"]) if spec.get("start_at") is not None else None,
            end_at=from_ts(spec["end_at"]) if spec.get("end_at") is not None else None,
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy(policy["overlap"])),
        state=ScheduleState(note=state.get("note"), paused=state["paused"], limited_actions=state.get("limited_actions", False), remaining_actions=state.get("remaining_actions", 0)),
    )
    recent = [
        ScheduleActionResult(from_ts(r["scheduled_at"]), from_ts(r["started_at"]), ScheduleActionExecutionStartWorkflow(r["workflow_id"], r["run_id"]))
        for r in info.get("recent", [])
    ]
    schedule_info = ScheduleInfo(
        num_actions=info.get("num_actions", 0),
        num_actions_missed_catchup_window=0,
        num_actions_skipped_overlap=info.get("skipped", 0),
        running_actions=[ScheduleActionExecutionStartWorkflow(w, r) for w, r in row.running],
        recent_actions=recent,
        next_action_times=[from_ts(t) for t in svc.next_times(spec, state, client.clock.now().timestamp(), 10)],
        created_at=from_ts(row.created),
        last_updated_at=from_ts(info["updated"]) if info.get("updated") else None,
    )
    return kind(row.schedule_id, schedule, schedule_info)


async def create(client: Client, id: str, schedule: Schedule, *, trigger_immediately: bool) -> ScheduleHandle:
    if not id:
        raise ValueError("create_schedule needs a schedule id: pass it first, create_schedule('my-schedule', Schedule(...)).")
    check(schedule)
    encoded = await encode(client, schedule)
    client._ensure_service()
    await client.store.run(svc.create, id, encoded, trigger_immediately, client.clock.now())
    return ScheduleHandle(client, id)


async def list_schedules(client: Client) -> AsyncIterator[ScheduleListDescription]:
    for row in await client.store.read(svc.read_all):
        yield await _description(client, row, ScheduleListDescription)
