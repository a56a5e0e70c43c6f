"""``%replay`` and its widget, driven from Python: buttons, slider, breakpoints, old code beside new."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from kernel_ext._replay_view import history_html, mark_node, source_html
from kernel_ext._replay_widget import ReplayView, parse_breakpoints
from tests.kernel_ext.test_magics import ACTIVITY_CELL, loaded_shell, run, usage_error

PAY_V1 = '''%%workflow
@workflow.defn
class Pay:
    @workflow.run
    async def run(self, amount: int) -> str:
        receipt = await workflow.execute_activity(greet, "charge", start_to_close_timeout=timedelta(seconds=10))
        await workflow.sleep(timedelta(hours=1))
        return receipt
'''

PAY_V2 = '''%%workflow
@workflow.defn
class Pay:
    @workflow.run
    async def run(self, amount: int) -> str:
        if amount > 100:
            await workflow.execute_activity(greet, "fraud check", start_to_close_timeout=timedelta(seconds=10))
        receipt = await workflow.execute_activity(greet, "charge", start_to_close_timeout=timedelta(seconds=10))
        await workflow.sleep(timedelta(hours=1))
        return receipt
'''


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)
    yield from loaded_shell(after=("%config DurableLab.db_path = ':memory:'", "%config DurableLab.time_mode = 'skip'"))


def _paid(shell: InteractiveShell, wid: str, amount: int) -> None:
    run(shell, f"%workflow execute --type Pay -t q -w {wid} -i {amount}")


def test_replay_of_a_run_steps_with_buttons_slider_and_breakpoints(shell: InteractiveShell) -> None:
    run(shell, ACTIVITY_CELL)
    run(shell, PAY_V1)
    run(shell, "%worker start -t q")
    _paid(shell, "pay-1", 5)
    view = run(shell, "view = %replay --workflow-id pay-1\nview")
    assert isinstance(view, ReplayView)
    d = view.debugger
    assert d.trace.ok and d.position == 0 and "replays cleanly" in view.title.value
    assert repr(view).startswith("<replay debugger: Pay 'pay-1'")
    view.buttons["step"].click()
    assert d.position == 1 and view.slider.value == 1
    view.buttons["next_event"].click()
    view.buttons["last"].click()
    assert view.slider.value == len(d.steps) - 1
    view.buttons["first"].click()
    # The first line of the run method: marked in the source, its locals in the table.
    first_line = d.run_to(line=5)  # the cell's lines: @workflow.defn is line 1
    assert first_line.kind == "line"
    assert 'class="dlab-current"' in view.source.value and "receipt = await" in view.source.value
    assert "amount" in view.state_pane.value and "<code>5</code>" in view.state_pane.value
    view.buttons["step"].click()  # the code now waits for the activity: the command is new
    assert "ScheduleActivityTask" in view.state_pane.value
    # The slider moves the debugger; the history marks the event of the step.
    view.slider.value = 0
    assert d.position == 0 and 'data-event="1" style="background' in view.history_pane.value
    # The run graph marks the node of the current event.
    assert "dlab-current-node" in view.graph.value or "install graphviz" in view.graph.value
    # Breakpoints typed in the boxes.
    view.type_breaks.value = "TimerFired"
    view.buttons["run_to"].click()
    assert d.state.event is not None and d.state.event.event_type == "TimerFired"
    assert "stopped at TimerFired events" in view.message.value
    view.type_breaks.value = "NoSuchEvent"
    view.buttons["run_to"].click()
    assert "event types are" in view.message.value
    view.type_breaks.value = ""
    view.line_breaks.value = "7"
    view.buttons["run_back"].click()
    assert "no breakpoint on the way" in view.message.value and d.position == 0
    # Plain debugger moves from Python redraw the widget too.
    d.goto(line=7)
    assert view.slider.value == d.position and "return receipt" in view.source.value
    with pytest.raises(ValueError):
        d.to_divergence()
    view.buttons["to_divergence"].click()
    assert view.buttons["to_divergence"].disabled
    assert view.buttons["to_divergence"].description == "✓ no divergence" and view.buttons["to_divergence"].button_style == ""


def test_a_run_broken_by_a_code_change_opens_at_the_divergence_beside_the_old_code(shell: InteractiveShell) -> None:
    run(shell, ACTIVITY_CELL)
    run(shell, PAY_V1)
    run(shell, "%worker start -t q")
    run(shell, "h = %workflow start --type Pay -t q -w pay-2 -i 500")
    for _ in range(200):
        if run(shell, "%workflow describe -w pay-2").pending_timers:
            break
        run(shell, "import asyncio; await asyncio.sleep(0.02)")
    run(shell, PAY_V2)
    view = run(shell, "%replay --workflow-id pay-2")
    d = view.debugger
    assert not d.trace.ok and d.state.kind == "divergence" and d.state.line is not None
    # Activities match by type and id, not input: the fraud check (greet, id 1) takes the
    # place of the recorded charge, and the code parts from the history where the old code
    # started its timer (event 11) and the new one schedules the charge.
    assert d.state.event_id == 11 and d.trace.divergence is not None
    assert view.buttons["to_divergence"].description == "⚠ divergence" and not view.buttons["to_divergence"].disabled
    assert d.trace.divergence.recorded == "TimerStarted(timer_id='1')"
    assert d.state.line.text.startswith('receipt = await workflow.execute_activity(greet, "charge"')
    assert view.old_trace is not None and view.old_trace.ok
    source = view.source.value
    assert "the code that recorded the history" in source and "your code" in source
    assert source.count('class="dlab-current"') == 2
    old_side, new_side = source.split("your code")
    assert "→   6 </span>        await workflow.sleep" in old_side
    assert "→   7 </span>        receipt = await" in new_side
    assert "divergence at event 11" in view.status.value and "diverges at event 11" in view.title.value


def test_a_history_file_replays_against_a_class(shell: InteractiveShell, tmp_path: Path) -> None:
    run(shell, ACTIVITY_CELL)
    run(shell, PAY_V1)
    run(shell, "%worker start -t q")
    _paid(shell, "pay-3", 7)
    document = run(shell, "%workflow show -w pay-3 --output json")
    (tmp_path / "pay-3.json").write_text(json.dumps(document.data))
    view = run(shell, "%replay --file pay-3.json --workflow Pay")
    assert view.debugger.trace.ok and view.debugger.trace.history.workflow_id == "pay-3"
    # A class of another workflow type: the error names both types.
    run(shell, "%%workflow\n@workflow.defn\nclass Other:\n    @workflow.run\n    async def run(self) -> None:\n        pass\n")
    wrong = usage_error(shell, "%replay --file pay-3.json --workflow Other")
    assert "The history is of workflow type 'Pay', but the Replayer was given Other" in wrong and "usage: %replay" in wrong
    # Replayed against the changed code, the same file diverges; --old shows what recorded it.
    run(shell, PAY_V2.replace("class Pay:", "class PayV2:").replace("@workflow.defn", '@workflow.defn(name="Pay")'))
    run(shell, PAY_V1.replace("class Pay:", "class PayV1:").replace("@workflow.defn", '@workflow.defn(name="Pay")'))
    view = run(shell, "%replay --file pay-3.json --workflow PayV2 --old PayV1")
    # 7 is not over 100: v2 takes the old path, so it agrees; the old trace is not needed.
    assert view.debugger.trace.ok and view.old_trace is None


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("%replay", "give --workflow-id ID"),
        ("%replay -w a --file b.json", "one of them"),
        ("%replay --file b.json", "--file needs --workflow"),
        ("%replay --file b.json --workflow Nope", "No class 'Nope'"),
        ("%replay --file b.json --workflow nosuchmodule:X", "Cannot import module 'nosuchmodule'"),
        ("%replay --file b.json --workflow json:Nope", "Module 'json' has no class 'Nope'"),
        ("%replay --file missing.json --workflow json:JSONDecoder", "cannot read missing.json"),
        ("%replay --file b.json -r R --workflow json:JSONDecoder", "--run-id goes with --workflow-id"),
        ("%replay -w nobody", "no run of workflow 'nobody'"),
        ("%replay --bogus", "unrecognized arguments"),
    ],
)
def test_misuse_is_a_usage_error_with_the_usage_line(shell: InteractiveShell, code: str, expected: str) -> None:
    message = usage_error(shell, code)
    assert expected in message and "usage: %replay" in message


def test_a_run_of_an_unknown_type_says_what_the_kernel_defines(shell: InteractiveShell) -> None:
    run(shell, ACTIVITY_CELL)
    run(shell, PAY_V1)
    run(shell, "%worker start -t q")
    _paid(shell, "pay-4", 1)
    magics = shell.magics_manager.registry["ReplayMagics"]
    magics.session.workflows.pop("Pay")
    message = usage_error(shell, "%replay -w pay-4")
    assert "defines no workflow 'Pay'" in message and "--workflow MODULE:CLASS" in message


def test_view_pieces() -> None:
    html = source_html(["a = 1\n", "b = <2>\n", "c = 3\n"], "f.py", 2, title="f.py")
    assert html.count('class="dlab-current"') == 1 and "b = &lt;2&gt;" in html and "→   2" in html
    long = source_html([f"x{i}\n" for i in range(1, 101)], "f.py", 50, window=5)
    assert "x45" in long and "x55" in long and "x44" not in long and "x56" not in long
    assert parse_breakpoints("3, 4", "TimerFired", "7") == [{"line": 3}, {"line": 4}, {"event_type": "TimerFired"}, {"event_id": 7}]
    with pytest.raises(ValueError, match="line numbers"):
        parse_breakpoints("x", "", "")
    svg = '<g><title>s1</title>\n<path fill="#fff" stroke="#000" d="M0"/></g>'
    assert 'stroke="#d500f9" stroke-width="4"' in mark_node(svg, "s1") and mark_node(svg, "s9") == svg


def test_history_window_marks_the_event() -> None:
    from datetime import datetime, timezone

    from engine.history import History, HistoryEvent

    events = tuple(HistoryEvent(i, "TimerFired", datetime(2024, 1, 1, tzinfo=timezone.utc), {"timerId": str(i)}) for i in range(1, 41))
    html = history_html(History("w", events), 20, window=3)
    assert 'data-event="20" style="background' in html and 'data-event="17"' in html and 'data-event="16"' not in html
    assert "events 17-23 of 40" in html



def test_two_runs_compared_step_by_step(shell: InteractiveShell, tmp_path: Path) -> None:
    run(shell, ACTIVITY_CELL)
    run(shell, PAY_V1)
    run(shell, "%worker start -t q")
    _paid(shell, "pay-a", 5)
    _paid(shell, "pay-b", 6)
    diff = run(shell, "%replay --workflow-id pay-a --compare pay-b")
    text = diff.to_text()
    assert text.startswith("pay-a (") and "1 difference(s); the first at event 1 (WorkflowExecutionStarted workflow Pay)" in text
    assert "changed" in text and "input [5]" in text and "input [6]" in text
    html = diff.to_html()
    assert html.count("durable-lab-graph") >= 2 and "dlab-diff-graphs" in html
    same = run(shell, "%replay --workflow-id pay-a --compare pay-a")
    assert same.same and "the same 7 steps with the same values" in same.to_text()
    document = run(shell, "%workflow show -w pay-b --output json")
    (tmp_path / "pay-b.json").write_text(json.dumps(document.data))
    from_file = run(shell, "%replay --workflow-id pay-a --compare pay-b.json")
    assert [row[1] for row in from_file.rows()] == [row[1] for row in diff.rows()]
    assert usage_error(shell, "%replay -w pay-a --compare pay-b --diff").startswith("--compare (two runs) and --diff")


def test_old_and_new_code_compared_event_by_event(shell: InteractiveShell) -> None:
    run(shell, ACTIVITY_CELL)
    run(shell, PAY_V1)
    run(shell, "%worker start -t q")
    _paid(shell, "pay-c", 500)
    assert "--diff needs the code that recorded the history" in usage_error(shell, "%replay -w pay-c --diff")
    run(shell, PAY_V2)
    diff = run(shell, "%replay --workflow-id pay-c --diff")
    rows = diff.rows()
    assert [r[1] for r in rows] == ["same", "diverges", "not reached"]  # charge, the timer, the completion
    assert rows[1][0] == "11" and "StartTimer" in rows[1][2] and "ScheduleActivityTask" in rows[1][3] and "← line 7" in rows[1][3]
    assert "the new code diverges at event 11" in diff.to_text()


def test_help_and_unload(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_cell("%replay?")
    shown = capsys.readouterr().out
    assert "usage: %replay" in shown and "--compare ID_OR_FILE" in shown and "--diff" in shown
    shell.run_cell("%unload_ext kernel_ext")
    assert "replay" not in shell.magics_manager.magics["line"]
    shell.run_cell("%load_ext kernel_ext")
    assert "replay" in shell.magics_manager.magics["line"]
