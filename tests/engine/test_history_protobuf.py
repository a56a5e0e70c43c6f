"""Our exported JSON is what Temporal writes: protobuf's own round trip leaves it unchanged.

``temporal workflow show --output json`` and temporalio's ``WorkflowHistory.to_json()`` print
the history message with protobuf's ``json_format`` and its default options (event type enum
names, zero-valued fields left out, int64 as strings, durations as ``"10s"``). A tool that
reads Temporal's files parses them back into that message: every field we write must exist
there (``ignore_unknown_fields=False``), and re-printing the message must give our JSON back.
The runs are those of the Temporal oracle (activities failing and retried, timers, signals,
children, patch markers, updates, cancellation, continue-as-new) plus a terminated run and a
failed workflow task.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("temporalio")

from google.protobuf import json_format  # noqa: E402
from temporalio.api.history.v1 import History as HistoryMessage  # noqa: E402

from engine import Worker  # noqa: E402
from engine.history import History  # noqa: E402
from engine.replay import Replayer  # noqa: E402
from engine.testing import WorkflowEnvironment  # noqa: E402
from tests.engine import workflows  # noqa: E402
from tests.engine.oracle import ours  # noqa: E402
from tests.engine.test_temporal_oracle import SCENARIOS, _record_all  # noqa: E402

EXTRA = ("Terminated", "FailedWorkflowTask")


async def _record_extra() -> dict[str, History]:
    histories: dict[str, History] = {}
    async with await WorkflowEnvironment.start_time_skipping() as env:
        async with Worker(env.client, task_queue="extra", workflows=[workflows.Sleeper], activities=[workflows.echo]):
            sleeper = await env.client.start_workflow(workflows.Sleeper.run, 3, id="terminated", task_queue="extra")
            await sleeper.terminate(reason="enough")
            histories["Terminated"] = await sleeper.fetch_history()
            typo = await env.client.start_workflow("Sleepr", 1, id="typo", task_queue="extra")
            for _ in range(500):
                history = await typo.fetch_history()
                if any(e.event_type == "WorkflowTaskFailed" for e in history):
                    break
                await asyncio.sleep(0.01)
            await typo.terminate()
            histories["FailedWorkflowTask"] = await typo.fetch_history()
    return histories


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, History]:
    directory = tmp_path_factory.mktemp("protobuf")
    # The oracle's recorder waits for labels in this module-level list: leave it empty, or
    # the oracle's own recording later in the session cancels before its activity starts.
    ours.STARTED_WAITS.clear()
    try:
        runs = {name: r.history for name, r in asyncio.run(_record_all(directory)).items()}
    finally:
        ours.STARTED_WAITS.clear()
    runs.update(asyncio.run(_record_extra()))
    return runs


def _protobuf_round_trip(text: str) -> dict[str, Any]:
    message = json_format.Parse(text, HistoryMessage(), ignore_unknown_fields=False)
    return json_format.MessageToDict(message)


@pytest.mark.parametrize("name", [*SCENARIOS, "RandomActivityId", *EXTRA])
def test_export_is_what_protobuf_writes(recorded: dict[str, History], name: str) -> None:
    history = recorded[name]
    text = history.to_json()
    ours_json = json.loads(text)
    assert _protobuf_round_trip(text) == ours_json
    # MessageToJson is what temporalio's to_json() prints; same document, other key order.
    message = json_format.Parse(text, HistoryMessage(), ignore_unknown_fields=False)
    assert json.loads(json_format.MessageToJson(message)) == ours_json
    assert ours_json["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"


@pytest.mark.parametrize("name", [n for n in SCENARIOS if n != "Updates"])
def test_new_export_reads_back_and_replays_on_our_engine(recorded: dict[str, History], name: str) -> None:
    history = recorded[name]
    again = History.from_json(history.workflow_id, history.to_json())
    assert [(e.event_id, e.event_type, e.event_time) for e in again] == [
        (e.event_id, e.event_type, e.event_time) for e in history
    ]
    # The fields left out are zero values: our own Replayer still accepts the run.
    classes = [getattr(ours, n) for n in (*SCENARIOS, "RandomActivityId")] + [ours.OracleChild]
    result = Replayer(workflows=classes).replay_workflow(again, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


def test_old_exports_still_read(recorded: dict[str, History]) -> None:
    """Before, we wrote PascalCase event types and every attribute as stored."""
    history = recorded["RetriedActivity"]
    old = {
        "events": [
            {
                "eventId": str(e.event_id),
                "eventTime": e.event_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if e.event_time else None,
                "eventType": e.event_type,
                "taskId": str(e.event_id),
                e.event_type[:1].lower() + e.event_type[1:] + "EventAttributes": dict(e.attributes),
            }
            for e in history
        ]
    }
    assert History.from_json(history.workflow_id, json.dumps(old)) == history


def test_shared_real_histories_survive_our_export(tmp_path: Path) -> None:
    """Real Temporal files (tests/histories, and /work/shared/histories when present, some
    of them older exports with PascalCase enums), imported and exported again, are what
    protobuf writes: the export adds nothing Temporal's message lacks. A field that the
    file itself carries and today's protos no longer have (``useCompatibleVersion``) is
    passed through, as a field of the source, not one we made up."""
    root = Path(__file__).resolve().parents[1] / "histories"
    shared = Path(__file__).resolve().parents[3] / "shared" / "histories"  # absent: skipped
    for path in sorted(root.glob("*.json")) + sorted(shared.glob("*.json")):
        if path.name == "recorded_with.json":
            continue
        source = json.loads(path.read_text(encoding="utf-8"))
        history = History.from_json(path.stem, source)
        text = history.to_json()
        ours = json.loads(text)
        message = json_format.Parse(text, HistoryMessage(), ignore_unknown_fields=True)
        back = json_format.MessageToDict(message)
        source_events = source["history"]["events"] if "history" in source else source["events"]
        for index, (our_event, raw) in enumerate(zip(ours["events"], source_events)):
            for key_path, value in _only_in(our_event, back["events"][index]):
                # Unknown to today's protos, or not what protobuf would print (a map value
                # that is not base64): passed through from the file as it was.
                assert _lookup(raw, key_path) == value, (path.name, index, key_path)
        if root in path.parents:  # recorded with today's protos: nothing is unknown
            assert back == ours, path.name


def _only_in(ours: Any, back: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Where our JSON differs from protobuf's print of it: (key path, our value)."""
    if isinstance(ours, dict) and isinstance(back, dict):
        assert set(back) <= set(ours), (prefix, set(back) - set(ours))
        found: list[tuple[tuple[Any, ...], Any]] = []
        for key, value in ours.items():
            if key not in back:
                found.append(((*prefix, key), value))
            else:
                found += _only_in(value, back[key], (*prefix, key))
        return found
    if isinstance(ours, list) and isinstance(back, list):
        assert len(ours) == len(back), prefix
        return [p for i, (a, b) in enumerate(zip(ours, back)) for p in _only_in(a, b, (*prefix, i))]
    return [] if ours == back else [(prefix, ours)]


def _lookup(obj: Any, key_path: tuple[Any, ...]) -> Any:
    for key in key_path:
        obj = obj[key] if isinstance(obj, list) and isinstance(key, int) and key < len(obj) else (
            obj.get(key) if isinstance(obj, dict) else None)
    return obj


def test_zero_values_are_left_out_by_the_data_not_by_event_type() -> None:
    """An event type the engine does not write itself is exported by the same rules."""
    from datetime import datetime, timezone

    from engine.history import HistoryEvent

    t0 = datetime(2026, 1, 2, 3, 4, 5, 200000, tzinfo=timezone.utc)
    start = HistoryEvent(1, "WorkflowExecutionStarted", t0, {
        "workflowType": {"name": "W"}, "taskQueue": {"name": "q", "kind": "TASK_QUEUE_KIND_UNSPECIFIED"},
        "parentInitiatedEventId": "0", "attempt": 1, "cronSchedule": "", "header": {},
        "memo": {"fields": {}}, "workflowTaskTimeout": "0.2s", "workflowRunTimeout": "0s",
        "prevAutoResetPoints": {"points": []},
    })
    upsert = HistoryEvent(2, "UpsertWorkflowSearchAttributes", t0, {
        "workflowTaskCompletedEventId": "0",
        "searchAttributes": {"indexedFields": {"Flag": {"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": ""}}},
    })
    text = History("w", (start, upsert)).to_json()
    assert _protobuf_round_trip(text) == json.loads(text)
    exported = json.loads(text)["events"]
    assert exported[0]["eventTime"] == "2026-01-02T03:04:05.200Z"
    assert exported[0]["workflowExecutionStartedEventAttributes"] == {
        "workflowType": {"name": "W"}, "taskQueue": {"name": "q"}, "attempt": 1, "header": {},
        "memo": {}, "workflowTaskTimeout": "0.200s", "workflowRunTimeout": "0s", "prevAutoResetPoints": {},
    }
    # A map entry is printed whatever its value (the payload's empty data is a zero).
    assert exported[1]["upsertWorkflowSearchAttributesEventAttributes"] == {
        "searchAttributes": {"indexedFields": {"Flag": {"metadata": {"encoding": "anNvbi9wbGFpbg=="}}}},
    }
