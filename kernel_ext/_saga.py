"""A run read as a saga: the forward steps, the failure that stopped them, and the
compensations that ran back, each tied to the step it undoes.

How compensations are recognised:

- ``engine.saga.Saga`` runs each compensation activity with the summary
  ``"compensation N: <name>"`` (N counts ``add_compensation`` calls from 1), kept with
  the activity's scheduled event: those activities are the compensations.
- A history without such summaries (a saga written by hand, or on Temporal's SDK, like
  ``tests/histories/saga.json``) is read by position: the steps after the first failed
  step (or after a cancel request) are compensations.

How a compensation is tied to the step it undoes, first rule that gives one answer:

1. data: its input holds the result of exactly one completed forward step (``undo(booking)``
   where ``booking = await book(...)``);
2. the summary's number N: the N-th completed forward step (compensations are added as
   steps succeed);
3. position: compensations run in reverse, so the k-th one undoes the k-th completed step
   counted from the last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kernel_ext._steps import Row

_STEP_KINDS = ("activity", "child")
_DONE = ("ok", "retried")
_NUMBER = re.compile(r"^\s*compensation\s+(\d+)", re.IGNORECASE)


@dataclass
class Link:
    """Compensation ``compensation`` undoes forward step number ``forward`` (0-based)."""

    compensation: Row
    forward: int
    how: str


@dataclass
class SagaPlan:
    start: Row | None
    forward: list[Row]
    trigger: Row | None  # the failed step (or cancel request) that started compensating
    groups: list[list[Row]]  # compensations in order; a group of several ran in parallel
    links: list[Link] = field(default_factory=list)
    result: Row | None = None
    by_summary: bool = False

    @property
    def compensations(self) -> list[Row]:
        return [row for group in self.groups for row in group]

    @property
    def parallel(self) -> bool:
        return any(len(group) > 1 for group in self.groups)

    def undone_by(self, compensation: Row) -> Link | None:
        return next((link for link in self.links if link.compensation is compensation), None)

    def describe(self) -> str:
        """One line: what went forward, what failed, how it was undone."""
        done = sum(1 for row in self.forward if row["status"] in _DONE)
        parts = [f"{done} of {len(self.forward)} steps completed"]
        if self.trigger is not None:
            parts.append(f"{self.trigger['title']} {'failed' if self.trigger['status'] == 'failed' else 'stopped the saga'}")
        comps = self.compensations
        if comps:
            how = "in parallel" if self.parallel else "one after another"
            ok = sum(1 for row in comps if row["status"] in _DONE)
            parts.append(f"{len(comps)} compensation{'s' if len(comps) != 1 else ''} {how}, {ok} completed")
        elif self.trigger is None:
            parts.append("nothing failed, nothing to compensate")
        else:
            parts.append("no compensation ran")
        return " · ".join(parts)


def _groups(rows: list[Row]) -> list[list[Row]]:
    groups: list[list[Row]] = []
    for row in rows:
        if groups and row["batch"] is not None and groups[-1][-1]["batch"] == row["batch"]:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _link(plan: SagaPlan) -> None:
    done = [i for i, row in enumerate(plan.forward) if row["status"] in _DONE]
    for k, comp in enumerate(plan.compensations):
        by_data = [
            i for i in done
            if plan.forward[i]["result"] and any(_same(v, plan.forward[i]["result"][0]) for v in comp["input"])
        ]
        if len(by_data) == 1:
            plan.links.append(Link(comp, by_data[0], "its input is that step's result"))
            continue
        number = _NUMBER.match(comp["summary"] or "")
        if number is not None:
            n = int(number.group(1))
            target = done[n - 1] if 0 < n <= len(done) else (n - 1 if 0 < n <= len(plan.forward) else None)
            if target is not None:
                plan.links.append(Link(comp, target, f"compensation {n} was added after step {n}"))
                continue
        if k < len(done):
            plan.links.append(Link(comp, done[len(done) - 1 - k], "compensations run in reverse order"))


def saga_plan(rows: list[Row]) -> SagaPlan:
    """Read the steps of one run (:func:`history_timeline_rows`) as a saga."""
    start = next((row for row in rows if row["kind"] == "start"), None)
    result = next((row for row in reversed(rows) if row["kind"] == "result"), None)
    steps = [row for row in rows if row["kind"] in _STEP_KINDS]
    marked = [row for row in steps if (row["summary"] or "").lower().startswith("compensation")]
    if marked:
        marked_ids = {id(row) for row in marked}
        first = next(i for i, row in enumerate(rows) if id(row) in marked_ids)
        forward = [row for row in rows[:first] if row["kind"] in _STEP_KINDS]
        trigger = next((row for row in forward if row["status"] == "failed"), None)
        if trigger is None:
            trigger = next((row for row in rows[:first] if row["kind"] == "cancel_request"), None)
        plan = SagaPlan(start, forward, trigger, _groups(marked), result=result, by_summary=True)
    else:
        cut = next(
            (i for i, row in enumerate(rows)
             if (row["kind"] in _STEP_KINDS and row["status"] == "failed") or row["kind"] == "cancel_request"),
            None,
        )
        if cut is None:
            return SagaPlan(start, steps, None, [], result=result)
        trigger = rows[cut]
        forward = [row for row in rows[: cut + 1] if row["kind"] in _STEP_KINDS]
        after = [row for row in rows[cut + 1 :] if row["kind"] in _STEP_KINDS]
        plan = SagaPlan(start, forward, trigger, _groups(after), result=result)
    _link(plan)
    return plan
