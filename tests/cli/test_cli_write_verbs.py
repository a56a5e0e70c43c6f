"""``dlab workflow start|signal|query|cancel|terminate|result`` on a database the library wrote;
what they write is checked with the library."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any, Callable

from engine import Client, Worker, WorkflowExecutionStatus
from engine.history import decode_payloads
from tests.cli import app
from tests.cli.helpers import QUEUE, ROOT, Result, with_client

Dlab = Callable[..., Result]


def _events(db: Path, workflow_id: str) -> list[Any]:
    async def body(client: Client) -> list[Any]:
        return list((await client.get_workflow_handle(workflow_id).fetch_history()).events)

    return with_client(db, body)


def test_start_writes_a_run_the_library_finishes(dlab: Dlab, db: Path) -> None:
    started = dlab("workflow", "start", "--db", str(db), "--type", "Hello", "--task-queue", QUEUE, "--workflow-id", "cli-1", "--input", '"Bo"')
    assert started.code == 0 and started.err == ""
    card = dict(re.findall(r"^  (\w+) +(.+)$", started.out, re.M))
    assert started.out.startswith("Running execution:")
    assert card["WorkflowId"] == "cli-1" and card["Type"] == "Hello" and card["TaskQueue"] == QUEUE and card["Namespace"] == "default"

    async def finish(client: Client) -> Any:
        handle = client.get_workflow_handle("cli-1")
        assert (await handle.describe()).run_id == card["RunId"]
        async with Worker(client, task_queue=QUEUE, workflows=[app.Hello], activities=[app.greet]):
            return await handle.result()

    assert with_client(db, finish) == "Hello, Bo!"


def test_start_json_and_several_inputs(dlab: Dlab, db: Path) -> None:
    started = dlab("workflow", "start", "--db", str(db), "--type", "Anything", "-t", "q2", "-i", '{"a": [1, 2]}', "-i", "3", "-i", "null", "-o", "json")
    document = json.loads(started.out)
    assert set(document) == {"workflowId", "runId", "type", "namespace", "taskQueue"}
    first = _events(db, document["workflowId"])[0]
    assert decode_payloads(first.attributes["input"]) == [{"a": [1, 2]}, 3, None]
    assert first.attributes["identity"].startswith("dlab-cli:")


def test_start_creates_a_new_database_and_refuses_an_open_id(dlab: Dlab, tmp_path: Path) -> None:
    fresh = tmp_path / "new.db"
    argv = ("workflow", "start", "--db", str(fresh), "--type", "Hello", "-t", QUEUE, "-w", "same")
    assert dlab(*argv).code == 0 and fresh.exists()
    again = dlab(*argv)
    assert again.code == 1 and again.err.count("\n") == 1
    assert "already started" in again.err and "'same'" in again.err


def test_bad_input_json_is_a_usage_error(dlab: Dlab, db: Path) -> None:
    result = dlab("workflow", "start", "--db", str(db), "--type", "Hello", "-t", QUEUE, "--input", "Ada")
    assert result.code == 2 and result.err.count("\n") == 1
    assert "--input 'Ada' is not valid JSON" in result.err and "'\"Ada\"'" in result.err


def test_non_standard_json_numbers_are_refused_in_one_line(dlab: Dlab, db: Path) -> None:
    # Python's json reads NaN and Infinity, strict JSON readers (and temporal's CLI) do not.
    for text in ("NaN", "Infinity", "-Infinity", "[1, NaN]", '{"x": -Infinity}'):
        result = dlab("workflow", "start", "--db", str(db), "--type", "Hello", "-t", QUEUE, "-w", "nan", "--input", text)
        assert result.code == 2 and result.err.count("\n") == 1, (text, result)
        assert f"--input {text!r} is not standard JSON" in result.err and "null" in result.err, result.err
    for text in ("-1", "-2.5", "-1e3"):  # negative numbers are values, not flags
        result = dlab("workflow", "start", "--db", str(db), "--type", "Hello", "-t", QUEUE, "-w", f"neg{text}", "--input", text)
        assert result.code == 0, (text, result.err)
    signal = dlab("workflow", "signal", "--db", str(db), "-w", "collect-1", "--name", "add", "--input", "-Infinity")
    assert signal.code == 2 and "not standard JSON" in signal.err


def test_signal_is_recorded_and_query_replays_with_the_code(dlab: Dlab, db: Path) -> None:
    signalled = dlab("workflow", "signal", "--db", str(db), "-w", "collect-1", "--name", "add", "--input", '"Bob"')
    assert signalled.code == 0 and signalled.out == "Signal workflow succeeded\n"
    signals = [e for e in _events(db, "collect-1") if e.event_type == "WorkflowExecutionSignaled"]
    assert [decode_payloads(e.attributes["input"]) for e in signals] == [["Ann"], ["Bob"]]

    async def let_a_worker_see_it(client: Client) -> None:
        async with Worker(client, task_queue=QUEUE, workflows=[app.Collector]):
            for _ in range(300):
                if (await client.get_workflow_handle("collect-1").fetch_history()).events[-1].event_type == "WorkflowTaskCompleted":
                    return
                await asyncio.sleep(0.01)

    with_client(db, let_a_worker_see_it)
    before = len(_events(db, "collect-1"))
    queried = dlab("workflow", "query", "--db", str(db), "-w", "collect-1", "--name", "tally", "--module", "tests.cli.app")
    assert queried.code == 0, queried.err
    assert re.search(r'^  QueryResult +\{"count": 2, "names": \["Ann", "Bob"\]\}$', queried.out, re.M)
    by_file = dlab("workflow", "query", "--db", str(db), "-w", "collect-1", "--name", "has", "-i", '"Ann"', "--file", str(ROOT / "tests/cli/app.py"), "-o", "json")
    assert json.loads(by_file.out) == {"queryResult": [True]}
    assert len(_events(db, "collect-1")) == before  # queries write nothing


def test_query_without_code_asks_the_workers_and_needs_a_known_name(dlab: Dlab, db: Path) -> None:
    without = dlab("workflow", "query", "--db", str(db), "-w", "collect-1", "--name", "tally", "--timeout", "300ms")
    assert without.code == 1 and without.err.count("\n") == 1
    assert "No worker answered query 'tally' within 0.3 s" in without.err and "--module" in without.err
    unknown = dlab("workflow", "query", "--db", str(db), "-w", "collect-1", "--name", "nope", "-m", "tests.cli.app")
    assert unknown.code == 1 and unknown.err.count("\n") == 1
    assert unknown.err.startswith("Error: Query handler for 'nope' expected but not found, known queries: [has tally].")
    raised = dlab("workflow", "query", "--db", str(db), "-w", "collect-1", "--name", "has", "-m", "tests.cli.app")
    assert raised.code == 1 and raised.err.count("\n") == 1 and raised.err.startswith("Error: Query 'has' raised TypeError")
    assert "--module" not in unknown.err + raised.err  # the code was given: the advice is for a missing worker
    other_code = dlab("workflow", "query", "--db", str(db), "-w", "collect-1", "--name", "tally", "-m", "tests.engine.workflows")
    assert other_code.code == 1 and "defines no workflow type 'Collector'" in other_code.err


def test_cancel_records_the_request(dlab: Dlab, db: Path) -> None:
    cancelled = dlab("workflow", "cancel", "--db", str(db), "-w", "collect-1", "--reason", "changed my mind")
    assert cancelled.code == 0 and cancelled.out == "Canceled workflow\n"
    requests = [e for e in _events(db, "collect-1") if e.event_type == "WorkflowExecutionCancelRequested"]
    assert len(requests) == 1 and requests[0].attributes["cause"] == "changed my mind"


def test_terminate_then_every_write_to_the_closed_run_fails_in_one_line(dlab: Dlab, db: Path) -> None:
    terminated = dlab("workflow", "terminate", "--db", str(db), "-w", "collect-1", "--reason", "enough")
    assert terminated.code == 0 and terminated.out == "Workflow terminated\n"

    async def status(client: Client) -> Any:
        return (await client.get_workflow_handle("collect-1").describe()).status

    assert with_client(db, status) == WorkflowExecutionStatus.TERMINATED
    for argv in (("terminate",), ("cancel",), ("signal", "--name", "add", "-i", '"x"')):
        again = dlab("workflow", *argv[:1], "--db", str(db), "-w", "collect-1", *argv[1:])
        assert again.code == 1 and again.out == "", argv
        assert again.err.startswith("Error: ") and again.err.count("\n") == 1 and "already closed" in again.err


def test_result_exit_codes_follow_the_outcome(dlab: Dlab, db: Path) -> None:
    done = dlab("workflow", "result", "--db", str(db), "-w", "hello-1")
    assert done.code == 0 and re.search(r'^  Result +"Hello, Ada!"$', done.out, re.M)
    failed = dlab("workflow", "result", "--db", str(db), "-w", "boom-1", "-o", "json")
    assert failed.code == 1
    assert failed.err == "Error: workflow failed: boom: on purpose (Boom)\n"
    document = json.loads(failed.out)
    assert document["status"] == "FAILED" and document["closeEvent"]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_FAILED"
    terminated = dlab("workflow", "result", "--db", str(db), "-w", "doomed-1")
    assert terminated.code == 1 and terminated.err == "Error: workflow terminated: no longer needed\n"
