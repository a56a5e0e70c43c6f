"""Checks on the replay debugger (tutorial 08), written with :mod:`kernel_ext.exercises`.

Each check reads what really happened (the debugger's position, its trace, the history) and
records its findings on a :class:`kernel_ext.exercises.Check`: what is right so far, what is
not yet, and a hint for the rest. The course's exercises (``notebooks/checks/debugging.py``)
call :func:`decision_findings` and :func:`delay_findings` from ``%check``;
:func:`check_decision` and :func:`check_delays` give the same :class:`Verdict` at once, for
code that calls them directly. A check never raises for a wrong answer.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Sequence

from engine._api.durations import from_duration
from engine.replay import ReplayDebugger
from kernel_ext.exercises import Check as ExerciseCheck
from kernel_ext.exercises import Verdict, judge

__all__ = ["Check", "check_decision", "check_delays", "decision_findings", "delay_findings"]

Check = Verdict  # what the checks returned before they moved onto kernel_ext.exercises

DECISION_HINT = "Stop the debugger on the line where the workflow decides, then read its locals (debugger.state.locals)."
DELAYS_HINT = "Put a breakpoint on the sleep line and read delay at each stop of run_to()."


def _require_debugger(c: ExerciseCheck, debugger: Any) -> ReplayDebugger:
    c.require(
        isinstance(debugger, ReplayDebugger),
        "",
        f"pass the debugger itself (view.debugger, a ReplayDebugger), not {type(debugger).__name__}",
    )
    return debugger  # type: ignore[no-any-return]


def decision_findings(
    c: ExerciseCheck, debugger: Any, variable: Any, *, line_text: str | Sequence[str], expected_variable: str, what: str
) -> None:
    """The debugger stands at a line whose source is ``line_text`` (or one of them: the
    ``if`` that decides ``what``, or the statement it leads to), where ``expected_variable``
    is true, and ``variable`` names that local."""
    debugger = _require_debugger(c, debugger)
    texts = [line_text] if isinstance(line_text, str) else list(line_text)
    step = debugger.state
    if not (step.kind == "line" and step.line is not None and step.line.text.strip() in texts):
        target = debugger.line_of(texts[-1])
        c.require(
            False,
            "",
            f"the debugger is at step {step.index} ({step.describe()}), not where the workflow decides {what}",
            hint=f"that decision is the line `{texts[-1]}` (line {target}); debugger.goto(line={target}) jumps to the first "
            "time it ran.",
        )
    values = dict(step.locals)
    decisive = values.get(expected_variable)
    c.require(
        decisive == "True",
        f"the debugger stands where the workflow decides {what} (step {step.index})",
        f"right line, but at step {step.index} the workflow does not decide {what} yet ({expected_variable} = {decisive})",
        hint="this line runs once per try; debugger.run_to(line=...) moves to its next run, debugger.last() then "
        "run_back(line=...) to its last.",
    )
    c.require(
        isinstance(variable, str) and bool(variable),
        "",
        'set the answer to the name of the variable, as a string, e.g. "attempt"',
        hint="The locals of the step are in debugger.state.locals.",
    )
    c.require(
        variable in values,
        "",
        f"{variable!r} is not a local here; the locals are: {', '.join(values) or 'none'}",
        hint="Answer with one of the names the debugger shows at this step.",
    )
    c.require(
        variable == expected_variable,
        f"the workflow decides {what} because {variable} = {values.get(variable)}",
        f"{variable} = {values.get(variable)} here, but it is not what made the workflow decide {what}",
        hint="read the condition of the `if` just before this line; which of its parts is true?",
    )


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


def delay_findings(c: ExerciseCheck, debugger: Any, delays: Any) -> None:
    """``delays`` lists the seconds the workflow slept before each retry, as its timers say."""
    debugger = _require_debugger(c, debugger)
    truth = [
        (from_duration(e.attributes.get("startToFireTimeout")) or timedelta()).total_seconds()
        for e in debugger.trace.history.events
        if e.event_type == "TimerStarted"
    ]
    c.require(
        delays is not None and not isinstance(delays, (str, bytes)) and isinstance(delays, Sequence),
        "",
        "set delays to a list of numbers of seconds, e.g. [1, 2, 4]",
    )
    given = [_seconds(d) for d in delays]
    bad = [d for d, g in zip(delays, given) if g is None]
    c.require(not bad, "", f"{bad[0]!r} is not a number of seconds (or a timedelta)" if bad else "")
    c.require(
        len(given) == len(truth),
        f"your list has one delay per sleep ({len(truth)})",
        f"the workflow slept {len(truth)} times, your list has {len(given)} delays",
        hint='put a breakpoint on the sleep line (debugger.add_breakpoint(line=debugger.line_of("workflow.sleep"))) '
        "and count the stops of run_to().",
    )
    wrong = [i for i, (g, t) in enumerate(zip(given, truth)) if abs((g or 0) - t) > 1e-6]
    c.require(
        not wrong,
        f"each delay is the one its timer recorded: {', '.join(f'{t:g}' for t in truth)} s",
        f"{len(given) - len(wrong)} of {len(given)} delays are right; delay {wrong[0] + 1} is not {given[wrong[0]]:g} s"
        if wrong else "",
        hint="at each stop on the sleep line, read delay in debugger.state.locals (it is a timedelta).",
    )
    grows = all(b > a for a, b in zip(truth, truth[1:]))
    c.ok("it grows, as a backoff should" if grows else "it never grows: that is the retry storm")


def check_decision(debugger: Any, variable: Any, *, line_text: str | Sequence[str], expected_variable: str, what: str) -> Verdict:
    """:func:`decision_findings` as a verdict, at once."""
    return judge(
        f"what decided {what}",
        DECISION_HINT,
        lambda c: decision_findings(c, debugger, variable, line_text=line_text, expected_variable=expected_variable, what=what),
    )


def check_delays(debugger: Any, delays: Any) -> Verdict:
    """:func:`delay_findings` as a verdict, at once."""
    return judge("every delay", DELAYS_HINT, lambda c: delay_findings(c, debugger, delays))
