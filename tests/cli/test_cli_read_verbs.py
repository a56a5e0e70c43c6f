"""``dlab workflow show|list|describe`` against a database the library wrote."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from pathlib import Path
from typing import Any, Callable

import pytest

from engine import History
from engine.client import Client
from tests.cli.helpers import Result, with_client

Dlab = Callable[..., Result]
ROW = re.compile(r"^  +(\d+)  (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)  (\w+)$")


def _history(db: Path, workflow_id: str) -> History:
    async def body(client: Client) -> History:
        return await client.get_workflow_handle(workflow_id).fetch_history()

    return with_client(db, body)


def test_show_prints_aligned_events_and_the_result(dlab: Dlab, db: Path) -> None:
    shown = dlab("workflow", "show", "--db", str(db), "--workflow-id", "hello-1")
    assert shown.code == 0 and shown.err == ""
    lines = shown.out.splitlines()
    assert lines[0] == "Progress:"
    history = _history(db, "hello-1")
    rows = [ROW.match(line) for line in lines[2 : 2 + len(history)]]
    assert all(rows), lines
    assert [(int(m[1]), m[3]) for m in rows if m] == [(e.event_id, e.event_type) for e in history.events]
    assert len({m.start(3) for m in rows if m}) == 1  # the type column starts at one offset
    results = shown.out.split("Results:\n", 1)[1]
    assert re.search(r"^  Status +COMPLETED$", results, re.M)
    assert re.search(r'^  Result +"Hello, Ada!"$', results, re.M)


def test_show_detailed_decodes_payloads(dlab: Dlab, db: Path) -> None:
    shown = dlab("workflow", "show", "--db", str(db), "-w", "hello-1", "--detailed")
    assert shown.code == 0
    assert "--------------- [1] WorkflowExecutionStarted ---------------" in shown.out
    assert 'input[0]: "Ada"' in shown.out
    assert "activityType.name: greet" in shown.out
    assert 'result[0]: "Hello, Ada!"' in shown.out


def test_show_json_is_temporal_history_that_imports_back(dlab: Dlab, db: Path) -> None:
    shown = dlab("workflow", "show", "--db", str(db), "-w", "boom-1", "--output", "json")
    assert shown.code == 0
    imported = History.from_json("boom-1", shown.out)
    assert imported == _history(db, "boom-1")
    from temporalio.client import WorkflowHistory

    theirs = WorkflowHistory.from_json("boom-1", shown.out)  # the SDK's parser accepts it too
    assert len(theirs.events) == len(imported)
    compact = dlab("workflow", "show", "--db", str(db), "-w", "boom-1", "-o", "jsonl")
    assert compact.out.count("\n") == 1 and json.loads(compact.out) == json.loads(shown.out)


def test_show_of_a_failed_and_a_terminated_run(dlab: Dlab, db: Path) -> None:
    failed = dlab("workflow", "show", "--db", str(db), "-w", "boom-1")
    assert failed.code == 0  # showing worked; the run's outcome is in the text
    assert re.search(r"^  Failure +boom: on purpose \(Boom\)$", failed.out, re.M)
    terminated = dlab("workflow", "show", "--db", str(db), "-w", "doomed-1")
    assert re.search(r"^  Status +TERMINATED$", terminated.out, re.M)
    assert re.search(r"^  Reason +no longer needed$", terminated.out, re.M)


def test_show_of_a_running_run_has_no_results(dlab: Dlab, db: Path) -> None:
    shown = dlab("workflow", "show", "--db", str(db), "-w", "collect-1")
    assert shown.code == 0
    assert "WorkflowExecutionSignaled" in shown.out and "Results:" not in shown.out


def test_a_continued_run_shows_its_successor_and_result_follows_the_chain(dlab: Dlab, db: Path) -> None:
    async def runs(client: Client) -> Any:
        return await client.list_workflows("WorkflowId = 'again-1'")

    newest, first = with_client(db, runs)
    shown = dlab("workflow", "show", "--db", str(db), "-w", "again-1", "--run-id", first.run_id)
    assert re.search(r"^  Status +CONTINUED_AS_NEW$", shown.out, re.M)
    assert re.search(rf"^  NewRunId +{newest.run_id}$", shown.out, re.M)
    followed = dlab("workflow", "result", "--db", str(db), "-w", "again-1", "-r", first.run_id, "-o", "json")
    assert followed.code == 0, followed.err
    document = json.loads(followed.out)
    assert document["result"] == 2 and document["closeEvent"]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"


def test_show_follow_prints_until_the_run_closes(dlab: Dlab, db: Path) -> None:
    async def terminate_soon(client: Client) -> None:
        await asyncio.sleep(0.4)
        await client.get_workflow_handle("collect-1").terminate(reason="followed")

    elsewhere = threading.Thread(target=with_client, args=(db, terminate_soon))
    elsewhere.start()
    try:
        followed = dlab("workflow", "show", "--db", str(db), "-w", "collect-1", "--follow")
    finally:
        elsewhere.join()
    assert followed.code == 0
    rows = [m for m in map(ROW.match, followed.out.splitlines()) if m]
    assert [int(m[1]) for m in rows] == list(range(1, len(rows) + 1))  # each event once, in order
    assert rows[0][3] == "WorkflowExecutionStarted" and rows[-1][3] == "WorkflowExecutionTerminated"
    assert re.search(r"^  Reason +followed$", followed.out, re.M)


def test_list_table_newest_first(dlab: Dlab, db: Path) -> None:
    listed = dlab("workflow", "list", "--db", str(db))
    assert listed.code == 0 and listed.err == ""
    lines = listed.out.splitlines()
    assert lines[0].split() == ["Status", "WorkflowId", "Type", "StartTime"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["Terminated", "doomed-1", "Collector"],
        ["Running", "collect-1", "Collector"],
        ["Completed", "again-1", "Again"],
        ["ContinuedAsNew", "again-1", "Again"],
        ["Failed", "boom-1", "Boom"],
        ["Completed", "hello-1", "Hello"],
    ]
    starts = {line.index(line.split()[1]) for line in lines}
    assert len(starts) == 1  # aligned: every WorkflowId starts in the same column


def test_list_query_and_limit(dlab: Dlab, db: Path) -> None:
    def ids(*argv: str) -> list[str]:
        result = dlab("workflow", "list", "--db", str(db), *argv)
        assert result.code == 0, result.err
        return [line.split()[1] for line in result.out.splitlines()[1:]]

    assert ids("--query", "WorkflowType='Collector' AND ExecutionStatus='Running'") == ["collect-1"]
    assert ids("-q", "ExecutionStatus IN ('Failed', 'Terminated') OR WorkflowId = 'hello-1'") == ["doomed-1", "boom-1", "hello-1"]
    assert ids("-q", "CloseTime IS NULL") == ["collect-1"]
    assert ids("--limit", "2") == ["doomed-1", "collect-1"]
    assert ids("-q", "WorkflowId = 'again-1' AND ExecutionStatus = 'ContinuedAsNew'") == ["again-1"]
    assert ids("-q", "WorkflowType='Nothing'") == []


def test_list_json_matches_the_library(dlab: Dlab, db: Path) -> None:
    listed = dlab("workflow", "list", "--db", str(db), "-o", "json")
    documents: list[dict[str, Any]] = json.loads(listed.out)

    async def body(client: Client) -> Any:
        return await client.list_workflows()

    runs = with_client(db, body)
    assert [(d["execution"]["workflowId"], d["execution"]["runId"], d["type"]["name"], d["status"]) for d in documents] == [
        (r.id, r.run_id, r.workflow_type, f"WORKFLOW_EXECUTION_STATUS_{r.status.name}") for r in runs
    ]
    assert ("closeTime" in documents[0]) and ("closeTime" not in documents[1])
    lines = dlab("workflow", "list", "--db", str(db), "-o", "jsonl").out.splitlines()
    assert [json.loads(line) for line in lines] == documents


@pytest.mark.parametrize(
    ("query", "names"),
    [("WorkflowType='Hello' AND", "the end of the filter"), ("Foo='x'", "'Foo' (column 1)"), ("ExecutionStatus='Done'", "'Done'"),
     ("(" * 400 + "WorkflowId='a'" + ")" * 400, "nests brackets more than 50 deep (at column 51)"),
     (" OR ".join(["WorkflowId='a'"] * 2000), "more than 500 conditions")],
)
def test_bad_list_query_is_one_line_naming_the_token(dlab: Dlab, db: Path, query: str, names: str) -> None:
    listed = dlab("workflow", "list", "--db", str(db), "--query", query)
    assert listed.code == 1 and listed.out == ""
    assert listed.err.startswith("Error: ") and listed.err.count("\n") == 1
    assert names in listed.err


def test_describe_text_and_json(dlab: Dlab, db: Path) -> None:
    described = dlab("workflow", "describe", "--db", str(db), "-w", "collect-1")
    assert described.code == 0
    assert re.search(r"^  WorkflowId +collect-1$", described.out, re.M)
    assert re.search(r"^  Status +Running$", described.out, re.M)
    assert "Pending Activities: 0" in described.out and "Results:" not in described.out
    document = json.loads(dlab("workflow", "describe", "--db", str(db), "-w", "hello-1", "-o", "json").out)
    info = document["workflowExecutionInfo"]
    assert info["status"] == "WORKFLOW_EXECUTION_STATUS_COMPLETED" and info["type"] == {"name": "Hello"}
    assert info["historyLength"] == str(len(_history(db, "hello-1")))
    assert document["closeEvent"]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"


def test_run_id_selects_a_run_and_must_belong_to_the_workflow(dlab: Dlab, db: Path) -> None:
    run_id = _history(db, "hello-1").run_id
    assert dlab("workflow", "describe", "--db", str(db), "-w", "hello-1", "--run-id", run_id).code == 0
    wrong = dlab("workflow", "describe", "--db", str(db), "-w", "boom-1", "-r", run_id)
    assert wrong.code == 1 and f"has no run {run_id!r}" in wrong.err


def test_unknown_workflow_and_missing_database(dlab: Dlab, db: Path, tmp_path: Path) -> None:
    missing = dlab("workflow", "show", "--db", str(db), "-w", "nope")
    assert missing.code == 1 and missing.out == ""
    assert missing.err.count("\n") == 1 and "No workflow with id 'nope'" in missing.err
    nowhere = dlab("workflow", "list", "--db", str(tmp_path / "absent.db"))
    assert nowhere.code == 1 and "No engine database at" in nowhere.err
    assert not (tmp_path / "absent.db").exists()  # reading never creates a database


@pytest.mark.parametrize(
    ("statement", "names"),
    [("UPDATE meta SET value = '2' WHERE key = 'schema_version'", "says schema version 2, but table 'updates' is already there"),
     ("UPDATE meta SET value = 'seven' WHERE key = 'schema_version'", "schema version 'seven' is not a number"),
     ("DROP TABLE updates", "table 'updates' (added in version 3) is missing")],
)
def test_a_database_whose_schema_disagrees_is_one_line(dlab: Dlab, db: Path, statement: str, names: str) -> None:
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute(statement)
    conn.close()
    for verb in ("list", "describe"):
        result = dlab("workflow", verb, "--db", str(db), *(("-w", "hello-1") if verb == "describe" else ()))
        assert result.code == 1 and result.out == "", result
        assert result.err.startswith("Error: ") and result.err.count("\n") == 1, result.err
        assert names in result.err and "Restore it from a copy" in result.err


def test_database_from_the_environment(dlab: Dlab, db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLAB_DB", str(db))
    assert "hello-1" in dlab("workflow", "list").out
    overridden = dlab("workflow", "list", "--db", str(tmp_path / "other.db"))
    assert overridden.code == 1 and "other.db" in overridden.err  # --db wins over DLAB_DB


def test_colour_only_when_asked_or_on_a_terminal(dlab: Dlab, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = dlab("workflow", "list", "--db", str(db))
    assert "\x1b[" not in plain.out  # captured output is not a terminal
    coloured = dlab("workflow", "list", "--db", str(db), "--color", "always")
    assert "\x1b[32mCompleted" in coloured.out and "\x1b[31mFailed" in coloured.out
    monkeypatch.setenv("NO_COLOR", "1")
    from engine.cli._common import wants_colour

    class Terminal:
        def isatty(self) -> bool:
            return True

    assert not wants_colour(Terminal(), "auto")  # type: ignore[arg-type]
    monkeypatch.delenv("NO_COLOR")
    assert wants_colour(Terminal(), "auto")  # type: ignore[arg-type]
    assert not wants_colour(Terminal(), "never")  # type: ignore[arg-type]


def test_usage_errors_exit_2_with_one_line(dlab: Dlab, db: Path) -> None:
    for argv in (
        ("workflow", "show"),
        ("workflow", "frobnicate"),
        ("workflow", "list", "--output", "xml"),
        ("workflow", "start", "--type", "Hello", "-t", "q", "--run-timeout", "soon", "--db", str(db)),
    ):
        result = dlab(*argv)
        assert result.code == 2, argv
        assert result.err.startswith("Error: ") and result.err.count("\n") == 1, result.err
        assert "--help" in result.err


def test_describe_shows_search_attributes_and_memo_and_list_filters_on_them(dlab: Dlab, tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from engine import Worker, workflow
    from engine.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

    @workflow.defn(sandboxed=False)
    class Tagged:
        @workflow.run
        async def run(self) -> str:
            workflow.upsert_memo({"extra": [1, 2]})
            return "ok"

    db = tmp_path / "tagged.db"
    attributes = TypedSearchAttributes([
        SearchAttributePair(SearchAttributeKey.for_keyword("CustomKeywordField"), "x"),
        SearchAttributePair(SearchAttributeKey.for_datetime("CustomDatetimeField"), datetime(2026, 1, 2, tzinfo=timezone.utc)),
    ])

    async def body(client: Client) -> None:
        async with Worker(client, task_queue="q", workflows=[Tagged]):
            await client.execute_workflow(Tagged.run, id="tagged", task_queue="q", memo={"note": "hello"}, search_attributes=attributes)

    with_client(db, body)
    text = dlab("workflow", "describe", "--db", str(db), "-w", "tagged").out
    assert "Search Attributes:\n  CustomDatetimeField  \"2026-01-02T00:00:00+00:00\"\n  CustomKeywordField   \"x\"\n" in text
    assert "Memo:\n  extra  [1, 2]\n  note   \"hello\"\n" in text
    info = json.loads(dlab("workflow", "describe", "--db", str(db), "-w", "tagged", "-o", "json").out)["workflowExecutionInfo"]
    assert set(info["memo"]["fields"]) == {"note", "extra"}
    assert set(info["searchAttributes"]["indexedFields"]) == {"CustomKeywordField", "CustomDatetimeField"}
    listed = dlab("workflow", "list", "--db", str(db), "--query", "CustomDatetimeField >= '2026-01-02' AND CustomKeywordField = 'x'")
    assert listed.code == 0 and "tagged" in listed.out
    unknown = dlab("workflow", "list", "--db", str(db), "--query", "CustomKeywordFeld = 'x'")
    assert unknown.code == 1 and "known: CustomDatetimeField, CustomKeywordField" in unknown.err
