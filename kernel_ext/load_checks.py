"""Self-checking exercises of the load-testing tutorial: each check reads a measured report.

``check_knee(answer, report)`` — the offered rate at which p99 first passes the limit;
``check_capacity(answer, report)`` — the highest rate that kept up;
``check_more_capacity(answer, **reports)`` — which of several tests had the most capacity.

Each returns a ``CheckResult`` that shows "Well done!" or "Not yet:" with a hint. The answers come
from the learner's own measurements, so the checks compare with what this machine did, not
with a number written in advance. Tutorial 10 runs them through the course's exercises
(``notebooks/checks/load_testing.py``: ``%check find_the_knee``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.loadtest import LoadReport

__all__ = ["CheckResult", "report_of", "knee_rate", "check_knee", "check_capacity", "check_more_capacity"]


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    message: str
    hint: str = ""

    def text(self) -> str:
        if self.passed:
            return "Well done! " + self.message
        return "Not yet: " + self.message + (f" Hint: {self.hint}" if self.hint else "")

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        import html

        colour = "#2e7d32" if self.passed else "#b26a00"
        return f'<p style="color:{colour}">{html.escape(self.text())}</p>'


def report_of(value: Any) -> LoadReport:
    """The ``LoadReport`` of a ``%loadtest run`` result (or the report itself); ValueError otherwise."""
    report = getattr(value, "report", value)  # a LoadTestView or the report itself
    if not isinstance(report, LoadReport):
        raise ValueError(f"Give the result of %loadtest run (or its .report), not {type(value).__name__}.")
    return report


def knee_rate(report: Any, p99_limit: float | None = None) -> float | None:
    """The offered rate of the first step whose p99 passes ``p99_limit`` (default: the
    report's own limit); None if no step's did."""
    r = report_of(report)
    limit = r.p99_limit if p99_limit is None else p99_limit
    return next((s.offered_rate for s in r.steps if s.latency_p99 is not None and s.latency_p99 > limit), None)


NO_ANSWER = CheckResult(False, "there is no answer yet.", "set answer to a number of runs per second, then run this cell again.")


def check_knee(answer: float | None, report: Any) -> CheckResult:
    """Is ``answer`` the offered rate (runs/s) at which p99 latency first passed the limit?"""
    r = report_of(report)
    if answer is None:
        return NO_ANSWER
    knee = knee_rate(r)
    if knee is None:
        return CheckResult(False, f"in this test p99 never passed {r.p99_limit:g} s.", "run steps that go higher (raise the top "
                                  "rate of --steps, or make the activity slower) until one does, then answer again.")
    if _same(answer, knee):
        return CheckResult(True, f"p99 first passed {r.p99_limit:g} s at {knee:g} runs/s on this machine.")
    hint = "lower" if answer > knee else "higher"
    return CheckResult(False, f"p99 did not first pass {r.p99_limit:g} s at {answer:g} runs/s.",
                       f"read the p99 column of the steps table: the first step whose p99 is over "
                       f"{r.p99_limit * 1000:.0f} ms. It is {hint} than {answer:g} runs/s.")


def check_capacity(answer: float | None, report: Any) -> CheckResult:
    """Is ``answer`` the highest offered rate (runs/s) at which the test kept up?"""
    r = report_of(report)
    if answer is None:
        return NO_ANSWER
    capacity = r.capacity()
    if capacity is None:
        return CheckResult(False, "no step kept up in this test.", "start the ramp lower and run it again.")
    if _same(answer, capacity):
        return CheckResult(True, f"{capacity:g} runs/s is the highest rate whose step kept up (backlog flat, p99 under "
                                 f"{r.p99_limit:g} s).")
    return CheckResult(False, f"{answer:g} runs/s is not the highest rate that kept up.",
                       "look for the last step whose 'keeps up' column says yes, and give its offered rate "
                       f"({'lower' if answer > capacity else 'higher'} than {answer:g}).")


def check_more_capacity(answer: str | None, **reports: Any) -> CheckResult:
    """Which of the named reports (``one=view1, two=view2``) had the most capacity?"""
    names = ", ".join(map(repr, reports))
    if answer is None:
        return CheckResult(False, "there is no answer yet.", f"set answer to the name of a report ({names}), then run this cell again.")
    if answer not in reports:
        return CheckResult(False, f"{answer!r} is not one of the reports.", f"answer with one of: {names}.")
    capacities = {name: report_of(value).capacity() or 0.0 for name, value in reports.items()}
    best = max(capacities.values())
    winners = [name for name, c in capacities.items() if c == best]
    shown = ", ".join(f"{name} {c:g} runs/s" for name, c in capacities.items())
    if answer in winners:
        return CheckResult(True, f"Capacity measured: {shown}.")
    return CheckResult(False, f"{answer!r} did not have the most capacity.",
                       "compare the capacity (the highest rate that kept up) of each report: report.capacity() or the steps tables.")


def _same(answer: float, expected: float) -> bool:
    return abs(float(answer) - expected) <= max(1e-9, abs(expected) * 0.001)
