"""Self-checking exercises on the replay debugger (tutorial 08).

Each check reads what really happened (the debugger's position, its trace, the history) and
returns a ``Check``: printed, it says "Well done: ..." or "Not yet: ..." with what is right so
far and a hint for the rest. A check never raises for a wrong answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Sequence

from engine._api.durations import from_duration
from engine.replay import ReplayDebugger

__all__ = ["Check", "check_decision", "check_delays"]


@dataclass(frozen=True)
class Check:
    """The answer of a check: ``passed``, and the message to print."""

    passed: bool
    message: str

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return self.message

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.message)


def _not_debugger(value: Any) -> Check | None:
    if isinstance(value, ReplayDebugger):
        return None
    return Check(False, f"Not yet: pass the debugger itself (view.debugger, a ReplayDebugger), not {type(value).__name__}.")


def check_decision(debugger: Any, variable: Any, *, line_text: str | Sequence[str], expected_variable: str, what: str) -> Check:
    """The debugger stands at a line whose source is ``line_text`` (or one of them: the
    ``if`` that decides ``what``, or the statement it leads to) and ``variable`` names the
    local that decided it."""
    problem = _not_debugger(debugger)
    if problem is not None:
        return problem
    texts = [line_text] if isinstance(line_text, str) else list(line_text)
    step = debugger.state
    at_line = step.kind == "line" and step.line is not None and step.line.text.strip() in texts
    if not at_line:
        where = step.describe()
        target = debugger.line_of(texts[-1])
        return Check(
            False,
            f"Not yet: the debugger is at step {step.index} ({where}), not where the workflow decides {what}. "
            f"Hint: that decision is the line `{texts[-1]}` (line {target}); "
            f"debugger.goto(line={target}) jumps to the first time it ran.",
        )
    decisive = dict(step.locals).get(expected_variable)
    if decisive != "True":
        return Check(
            False,
            f"Not yet: right line, but at step {step.index} the workflow does not decide {what} yet "
            f"({expected_variable} = {decisive}). Hint: this line runs once per try; "
            "debugger.run_to(line=...) moves to its next run, debugger.last() then run_back(line=...) to its last.",
        )
    if not isinstance(variable, str) or not variable:
        return Check(False, f"Right place (step {step.index}). Not yet: set the answer to the name of the variable, as a string, e.g. \"attempt\".")
    values = dict(step.locals)
    if variable not in values:
        names = ", ".join(values) or "none"
        return Check(False, f"Right place (step {step.index}). Not yet: {variable!r} is not a local here; the locals are: {names}.")
    if variable != expected_variable:
        return Check(
            False,
            f"Right place (step {step.index}). Not yet: {variable} = {values[variable]} here, but it is not what made the "
            f"workflow decide {what}. Hint: read the condition of the `if` just before this line; which of its parts is true?",
        )
    return Check(True, f"Well done: at step {step.index} the workflow decides {what} because {variable} = {values[variable]}.")


_SECONDS = re.compile(r"^-?\d+(\.\d+)?$")
_TIMEDELTA = re.compile(r"(?:datetime\.)?timedelta\(((?:\s*(?:days|seconds|microseconds)=-?\d+,?)*)\s*\)")


def _seconds(value: Any) -> float | None:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value.strip() in ("datetime.timedelta(0)", "timedelta(0)"):
        return 0.0
    if isinstance(value, str) and _SECONDS.match(value.strip()):
        return float(value)
    if isinstance(value, str):
        # The debugger shows a timedelta as its repr: datetime.timedelta(days=1, seconds=5)
        match = _TIMEDELTA.fullmatch(value.strip())
        if match:
            parts = dict(re.findall(r"(days|seconds|microseconds)=(-?\d+)", match.group(1)))
            return timedelta(**{k: int(v) for k, v in parts.items()}).total_seconds()
    return None


def check_delays(debugger: Any, delays: Sequence[Any]) -> Check:
    """``delays`` lists the seconds the workflow slept before each retry, as its timers say."""
    problem = _not_debugger(debugger)
    if problem is not None:
        return problem
    truth = [
        (from_duration(e.attributes.get("startToFireTimeout")) or timedelta()).total_seconds()
        for e in debugger.trace.history.events
        if e.event_type == "TimerStarted"
    ]
    if delays is None or isinstance(delays, (str, bytes)) or not isinstance(delays, Sequence):
        return Check(False, "Not yet: set delays to a list of numbers of seconds, e.g. [1, 2, 4].")
    given = [_seconds(d) for d in delays]
    if any(g is None for g in given):
        bad = next(d for d, g in zip(delays, given) if g is None)
        return Check(False, f"Not yet: {bad!r} is not a number of seconds (or a timedelta).")
    if len(given) != len(truth):
        return Check(
            False,
            f"Not yet: the workflow slept {len(truth)} times, your list has {len(given)} delays. Hint: put a breakpoint on the "
            "sleep line (debugger.add_breakpoint(line=debugger.line_of(\"workflow.sleep\"))) and count the stops of run_to().",
        )
    wrong = [i for i, (g, t) in enumerate(zip(given, truth)) if abs((g or 0) - t) > 1e-6]
    if wrong:
        first = wrong[0]
        right = len(given) - len(wrong)
        return Check(
            False,
            f"Not yet: {right} of {len(given)} delays are right; delay {first + 1} is not {given[first]:g} s. Hint: at each stop "
            "on the sleep line, read delay in debugger.state.locals (it is a timedelta).",
        )
    grows = all(b > a for a, b in zip(truth, truth[1:]))
    verdict = "it grows, as a backoff should" if grows else "it never grows: that is the retry storm"
    return Check(True, f"Well done: the workflow slept {', '.join(f'{t:g}' for t in truth)} s; {verdict}.")
