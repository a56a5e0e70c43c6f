"""The Temporal oracle: temporalio's own Replayer judges the histories our engine writes.

Each workflow in ``tests/engine/oracle/ours.py`` runs on our engine (time-skipping test
environment); its exported JSON history is then replayed, in a subprocess, by temporalio's
``Replayer`` against the same code written with temporalio imports
(``tests/engine/oracle/theirs.py``). A replay that passes means temporalio accepts our
history as a valid, deterministic execution of that code. The subprocess also captures
what the workflow returned or raised while temporalio replayed it, which must be what our
engine returned: a second, payload-level check the Replayer itself does not make.

Negative controls replay the OneActivity history against changed workflows, proving the
oracle does fail on a real non-determinism.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("temporalio")

from engine import Worker  # noqa: E402
from engine.errors import ActivityError, ApplicationError, WorkflowFailureError, WorkflowUpdateFailedError  # noqa: E402
from engine.history import History  # noqa: E402
from engine.testing import WorkflowEnvironment  # noqa: E402
from tests.engine.oracle import ours  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ORACLE_DIR = Path(__file__).resolve().parent / "oracle"
TASK_QUEUE = "oracle"
REPLAY_TIMEOUT = 60.0
SHARED_MARKER = "# ---- SHARED CODE"
THEIRS_ONLY_MARKER = "# ---- NEGATIVE CONTROLS"

# workflow class name -> argument. The classes have the same names in ours.py and theirs.py.
SCENARIOS: dict[str, Any] = {
    "OneActivity": "World",
    "ParallelActivities": ["Ada", "Grace", "Barbara"],
    "RetriedActivity": "report",
    "Timers": 10,
    "FailingActivity": "no budget",
    "DeterministicValues": "dice",
    "ConditionTimeout": 7,
    "ConditionAlreadyTrue": 30,
    "StartThenAwait": "early",
    "CancelActivity": "long job",
    "Signals": 2,
    "ContinueOnce": 2,
    "Patched": "Ada",
    "ChildWorkflows": "Grace",
    "CancelChild": "sleeper",
    "CancelledWorkflow": "long wait",
    "CancelActivityAndWait": "waited job",
    "Updates": 1,
    "SearchAttributesAndMemo": "blue",
    "CancelBeforeSent": "early",
    "LocalActivities": "Ada",
}
# Replayed on their own: they pass only if workflow.random() is seeded exactly as in temporalio.
SEED_DEPENDENT = {"RandomActivityId": "seeded"}
# theirs.py class -> why replaying the OneActivity history against it must fail
NEGATIVE_CONTROLS = {
    "OneActivityOtherActivity": "schedules activity 'shout' where the history has 'greet'",
    "OneActivityExtraTimer": "starts a timer before the recorded activity",
}


@dataclass
class Recorded:
    """One run on our engine and its exported history."""

    name: str
    result: Any
    error: BaseException | None
    history: History
    path: Path


@dataclass
class Replay:
    """What one ``replay_check`` subprocess reported."""

    returncode: int | None
    output: str
    items: dict[tuple[str, str], dict[str, Any]]


@dataclass
class Oracle:
    recorded: dict[str, Recorded]
    positive: Replay
    negative: Replay
    seed_dependent: Replay


# --- recording runs on our engine ------------------------------------------------------


async def _wait_for_activity_start(label: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while label not in ours.STARTED_WAITS:
        if time.monotonic() > deadline:
            raise AssertionError(f"wait_for_cancel({label!r}) never started on our engine")
        await asyncio.sleep(0.01)


async def _record(env: WorkflowEnvironment, name: str, arg: Any, directory: Path) -> Recorded:
    workflow_id = f"oracle-{name}"
    handle = await env.client.start_workflow(getattr(ours, name).run, arg, id=workflow_id, task_queue=TASK_QUEUE)
    if name in ("CancelActivity", "CancelActivityAndWait"):
        # Virtual time stands still while nobody awaits the result: let the activity start,
        # then fire the workflow's 1 s timer by hand so it cancels a running activity.
        await _wait_for_activity_start(arg)
        await env.sleep(timedelta(seconds=1))
    if name == "CancelledWorkflow":
        await _wait_for_activity_start(arg)
        await handle.cancel()
    if name == "Updates":
        assert await handle.execute_update("add", 5) == 6
        try:
            await handle.execute_update("add", -1)
        except WorkflowUpdateFailedError:
            pass
        else:
            raise AssertionError("the validator did not reject add(-1)")
        assert await handle.execute_update("add", 7) == 13
        await handle.signal("finish")
    if name == "Signals":
        await handle.signal("add", "first")
        await asyncio.sleep(0.05)
        await handle.signal("add", "second")
    result: Any = None
    error: BaseException | None = None
    try:
        result = await asyncio.wait_for(handle.result(), 20)
    except WorkflowFailureError as err:
        error = err
    history = await handle.fetch_history()
    path = directory / f"{workflow_id}.json"
    path.write_text(history.to_json(), encoding="utf-8")
    return Recorded(name=name, result=result, error=error, history=history, path=path)


async def _record_all(directory: Path) -> dict[str, Recorded]:
    workflows = [getattr(ours, name) for name in (*SCENARIOS, *SEED_DEPENDENT)] + [ours.OracleChild]
    activities = [ours.greet, ours.flaky, ours.refuse, ours.wait_for_cancel]
    recorded: dict[str, Recorded] = {}
    async with await WorkflowEnvironment.start_time_skipping() as env:
        async with Worker(env.client, task_queue=TASK_QUEUE, workflows=workflows, activities=activities):
            for name, arg in {**SCENARIOS, **SEED_DEPENDENT}.items():
                recorded[name] = await _record(env, name, arg, directory)
    return recorded


# --- replaying with temporalio in a subprocess -----------------------------------------


def _run_replay_check(pairs: list[tuple[Path, str]], timeout: float) -> Replay:
    command = [sys.executable, "-m", "tests.engine.oracle.replay_check"]
    for path, class_name in pairs:
        command += [str(path), class_name]
    try:
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return Replay(returncode=None, output=f"timed out after {timeout:.0f}s\n{out}", items={})
    items = {}
    for line in proc.stdout.splitlines():
        if line.startswith("ORACLE-ITEM "):
            item = json.loads(line[len("ORACLE-ITEM ") :])
            items[(Path(item["file"]).name, item["class"])] = item
    return Replay(returncode=proc.returncode, output=proc.stdout + proc.stderr, items=items)


def _replay(pairs: list[tuple[Path, str]]) -> Replay:
    """Replay all pairs in one process (temporalio takes ~1 s to start); if that hangs, replay
    them one by one so that the hanging history is named and the others still judged."""
    batch = _run_replay_check(pairs, REPLAY_TIMEOUT)
    if batch.returncode is not None:
        return batch
    items: dict[tuple[str, str], dict[str, Any]] = {}
    output = [batch.output]
    for path, class_name in pairs:
        single = _run_replay_check([(path, class_name)], REPLAY_TIMEOUT)
        output.append(single.output)
        items.update(single.items)
        if single.returncode is None:
            items[(path.name, class_name)] = {
                "ok": False,
                "failure": f"temporalio's Replayer hung (no answer in {REPLAY_TIMEOUT:.0f}s)",
                "outcome": None,
            }
    return Replay(returncode=None, output="\n".join(output), items=items)


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Oracle:
    directory = tmp_path_factory.mktemp("oracle-histories")
    recorded = asyncio.run(_record_all(directory))
    one = recorded["OneActivity"].path
    return Oracle(
        recorded=recorded,
        positive=_replay([(recorded[name].path, name) for name in SCENARIOS]),
        negative=_replay([(one, cls) for cls in NEGATIVE_CONTROLS]),
        seed_dependent=_replay([(recorded[name].path, name) for name in SEED_DEPENDENT]),
    )


# --- helpers for assertions ------------------------------------------------------------


def _event_lines(history: History) -> str:
    lines = []
    for event in history:
        attrs = {k: v for k, v in event.attributes.items() if k not in ("input", "result", "header", "failure")}
        lines.append(f"  {event.event_id:>3} {event.event_type} {json.dumps(attrs, sort_keys=True)[:160]}")
    return "\n".join(lines)


def _item(replay: Replay, recorded: Recorded, class_name: str | None = None) -> dict[str, Any]:
    key = (recorded.path.name, class_name or recorded.name)
    item = replay.items.get(key)
    assert item is not None, f"replay_check reported nothing for {key}; its output:\n{replay.output}"
    return item


def _failure_messages(failure: dict[str, Any] | None) -> list[str]:
    messages = []
    while failure:
        messages.append(failure.get("message", ""))
        failure = failure.get("cause")
    return messages


def _without_seeded_values(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k not in ("random", "uuid")}


# --- tests -----------------------------------------------------------------------------


def test_shared_workflow_code_is_identical_in_ours_and_theirs() -> None:
    ours_text = (ORACLE_DIR / "ours.py").read_text(encoding="utf-8")
    theirs_text = (ORACLE_DIR / "theirs.py").read_text(encoding="utf-8")
    ours_body = ours_text[ours_text.index(SHARED_MARKER) :]
    theirs_body = theirs_text[theirs_text.index(SHARED_MARKER) : theirs_text.index(THEIRS_ONLY_MARKER)]
    assert ours_body.rstrip() == theirs_body.rstrip()


@pytest.mark.parametrize("name", list(SCENARIOS) + list(SEED_DEPENDENT))
def test_engine_result_matches_exported_history(oracle: Oracle, name: str) -> None:
    rec = oracle.recorded[name]
    last = rec.history.events[-1]
    if name == "FailingActivity":
        assert isinstance(rec.error, WorkflowFailureError)
        assert isinstance(rec.error.cause, ActivityError)
        app = rec.error.cause.__cause__ or getattr(rec.error.cause, "cause", None)
        assert isinstance(app, ApplicationError) and app.message == f"refused: {SCENARIOS[name]}"
        assert last.event_type == "WorkflowExecutionFailed", _event_lines(rec.history)
        assert f"refused: {SCENARIOS[name]}" in _failure_messages(last.attributes.get("failure"))
        assert rec.history.result() is None
        return
    if name == "CancelledWorkflow":
        assert isinstance(rec.error, WorkflowFailureError)
        assert type(rec.error.cause).__name__ == "CancelledError", rec.error.cause
        assert last.event_type == "WorkflowExecutionCanceled", _event_lines(rec.history)
        scheduled = [e.attributes["activityType"]["name"] for e in rec.history.events if e.event_type == "ActivityTaskScheduled"]
        assert scheduled == ["wait_for_cancel", "greet"], _event_lines(rec.history)
        return
    assert rec.error is None, f"{name} failed on our engine: {rec.error!r}"
    if name == "ContinueOnce":
        # The recorded (first) run hands over to a new run; result() followed the chain.
        assert last.event_type == "WorkflowExecutionContinuedAsNew", _event_lines(rec.history)
        assert rec.result == "Hello, 1!"
        return
    assert last.event_type == "WorkflowExecutionCompleted", _event_lines(rec.history)
    assert rec.history.result() == rec.result


EXPECTED_RESULTS: dict[str, Any] = {
    "OneActivity": "Hello, World!",
    "ParallelActivities": ["Hello, Ada!", "Hello, Grace!", "Hello, Barbara!"],
    "RetriedActivity": "report succeeded on attempt 3",
    "ConditionTimeout": "timed out after 7s",
    "ConditionAlreadyTrue": "ready",
    "StartThenAwait": ["Hello, early!", "Hello, again!"],
    "CancelActivity": "cancelled",
    "ChildWorkflows": ["Hello, Grace!", "child failed: child refused", "poked: hi", "Hello, anonymous!"],
    "CancelChild": "child cancelled: CancelledError",
    "CancelActivityAndWait": "cancel completed: CancelledError",
    "Updates": 13,
    "SearchAttributesAndMemo": {"colour": "blue", "size": None, "memo": {"note": "painted blue"}},
    "CancelBeforeSent": "cancelled before it was sent",
}


@pytest.mark.parametrize("name", list(EXPECTED_RESULTS))
def test_engine_runs_the_workflow_as_temporal_would(oracle: Oracle, name: str) -> None:
    assert oracle.recorded[name].result == EXPECTED_RESULTS[name]


def test_timers_advance_workflow_now_by_their_duration(oracle: Oracle) -> None:
    # workflow.now() is the start time of the workflow task, which follows the timer's
    # firing by a little: virtual time also moves with the wall clock, as in Temporal.
    result = oracle.recorded["Timers"].result
    assert 10 <= result["first"] < 11 and 20 <= result["second"] < 21, result


def test_all_histories_replay_in_one_temporalio_process(oracle: Oracle) -> None:
    assert oracle.positive.returncode == 0, oracle.positive.output


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_temporalio_replayer_accepts_history(oracle: Oracle, name: str) -> None:
    rec = oracle.recorded[name]
    item = _item(oracle.positive, rec)
    assert item["ok"], (
        f"temporalio's Replayer rejected our {name} history:\n{item['failure']}\n"
        f"history ({rec.path}):\n{_event_lines(rec.history)}"
    )


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_temporalio_replay_reproduces_our_result(oracle: Oracle, name: str) -> None:
    rec = oracle.recorded[name]
    outcome = _item(oracle.positive, rec)["outcome"]
    assert outcome is not None, f"the {name} workflow never finished while temporalio replayed it"
    if name == "FailingActivity":
        assert outcome["error"] == "ActivityError", outcome
        assert outcome["cause"]["error"] == "ApplicationError", outcome
        assert outcome["cause"]["message"] == f"refused: {SCENARIOS[name]}", outcome
        return
    if name == "ContinueOnce":
        assert outcome.get("error") in ("ContinueAsNewError", "_ContinueAsNewError"), outcome
        return
    if name == "CancelledWorkflow":
        # The cancelled activity's error left the run method: the run is cancelled.
        assert outcome.get("error") == "ActivityError" and outcome["cause"]["error"] == "CancelledError", outcome
        return
    assert "result" in outcome, f"{name} raised while temporalio replayed it: {outcome}"
    if name == "DeterministicValues":
        # workflow.now() and the activity result must agree; random/uuid4 are checked below.
        assert _without_seeded_values(outcome["result"]) == _without_seeded_values(rec.result)
        return
    assert outcome["result"] == rec.result


def test_workflow_random_and_uuid4_match_temporalio(oracle: Oracle) -> None:
    rec = oracle.recorded["DeterministicValues"]
    outcome = _item(oracle.positive, rec)["outcome"]
    assert outcome["result"]["random"] == rec.result["random"], f"temporalio seed {outcome['random_seed']}"
    assert outcome["result"]["uuid"] == rec.result["uuid"]


def test_activity_id_from_uuid4_replays_in_temporalio(oracle: Oracle) -> None:
    rec = oracle.recorded["RandomActivityId"]
    item = _item(oracle.seed_dependent, rec)
    assert item["ok"], f"{item['failure']}\nhistory:\n{_event_lines(rec.history)}"


def test_negative_controls_fail_the_replay(oracle: Oracle) -> None:
    assert oracle.negative.returncode == 1, oracle.negative.output


@pytest.mark.parametrize("class_name", list(NEGATIVE_CONTROLS))
def test_temporalio_reports_nondeterminism_for_changed_workflow(oracle: Oracle, class_name: str) -> None:
    rec = oracle.recorded["OneActivity"]
    item = _item(oracle.negative, rec, class_name)
    assert not item["ok"], f"the oracle missed a change: {NEGATIVE_CONTROLS[class_name]}"
    assert "nondetermin" in item["failure"].lower(), item["failure"]
    if class_name == "OneActivityOtherActivity":
        assert "'greet'" in item["failure"] and "'shout'" in item["failure"], item["failure"]
