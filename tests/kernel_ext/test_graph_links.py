"""Run graphs of messages and of runs tied to other runs: signals, updates, versioning
patches, child workflows (nested or linked), continue-as-new chains. Real Temporal
histories (tests/histories) where the engine does not make the events yet."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from engine import Worker, activity, workflow
from engine.history import History, HistoryEvent, encode_payload, load_history
from engine.testing import WorkflowEnvironment
from kernel_ext import graphs
from kernel_ext._dot import MESSAGE_COLOURS, STATUS_COLOURS
from kernel_ext.display import ChainView

from tests.kernel_ext.dot_reading import read

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
GREET_CHILD, FAILING_CHILD = "fixture-child-greet-child", "fixture-child-failing-child"


def fixture(name: str, workflow_id: str | None = None) -> History:
    path = HISTORIES / f"{name}.json"
    return History.from_json(workflow_id, path.read_text()) if workflow_id else load_history(path)


def children() -> dict[str, History]:
    return {GREET_CHILD: fixture("child_greet_child", GREET_CHILD), FAILING_CHILD: fixture("child_failing_child", FAILING_CHILD)}


# --- signals and updates ------------------------------------------------------------------


def test_signals_and_updates_are_yellow_arrows_in_the_order_they_arrived() -> None:
    graph = read(graphs.run_graph(fixture("signals_queries_update")))
    order = ["Workflow started", "signal add_item", "signal add_item", "update set_discount", "greet",
             "signal finish", "Completed"]
    by_name = {n.name: n for n in graph.nodes.values()}
    chain = [by_name[f"s{i}"].title for i in range(len(order))]
    assert chain == order
    assert [(e.tail, e.head) for e in graph.edges] == [(f"s{i}", f"s{i + 1}") for i in range(len(order) - 1)]
    for name in ("s1", "s2", "s3", "s5"):
        assert by_name[name].attrs["shape"] == "cds" and by_name[name].fill == MESSAGE_COLOURS[0]
    assert 'received \\"apple\\"' in by_name["s1"].attrs["label"]
    update = by_name["s3"]
    assert "(10)" in update.attrs["label"] and 'Hello, 10% off!' in update.attrs["label"]
    assert "events 13, 20" in update.attrs["label"] and "signal with an answer" in update.attrs["tooltip"]


def test_a_rejected_update_is_red() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    specs = [
        ("WorkflowExecutionStarted", {"workflowType": {"name": "W"}}),
        ("WorkflowExecutionUpdateRejected", {"protocolInstanceId": "u1", "rejectedRequest": {
            "meta": {"updateId": "u1"}, "input": {"name": "set_discount", "args": {"payloads": [encode_payload(90)]}}},
            "failure": {"message": "discount 90% is not between 0 and 50"}}),
    ]
    history = History("w", tuple(HistoryEvent(i, k, t0, a) for i, (k, a) in enumerate(specs, start=1)))
    node = read(graphs.run_graph(history)).titled("update set_discount")
    assert node.fill == STATUS_COLOURS["failed"][0] and "rejected: discount 90%" in node.attrs["label"]


# --- versioning patches ------------------------------------------------------------------


def test_patch_markers_are_hexagons_named_by_their_call_and_absorb_the_search_attribute() -> None:
    history = fixture("patched")
    rows = graphs.history_timeline_rows(history)
    assert [r["title"] for r in rows] == ["Workflow started", 'patched("my-change")', "greet",
                                          'deprecate_patch("other-change")', "sleep 100ms", "Completed"]
    assert [r["event_ids"] for r in rows if r["kind"] == "patch"] == [[5, 6], [13, 14]]
    assert "TemporalChangeVersion = [\"my-change\", \"other-change\"]" in rows[3]["tooltip"]
    graph = read(graphs.run_graph(history))
    patch = graph.titled('patched(\\"my-change\\")')
    assert patch.attrs["shape"] == "hexagon" and "marker · new code" in patch.attrs["label"]
    greet = graph.titled("greet")
    assert (patch.name, greet.name) in {(e.tail, e.head) for e in graph.edges}  # the marker comes first


@activity.defn
async def shout(text: str) -> str:
    return text.upper()


@workflow.defn
class Patched:
    @workflow.run
    async def run(self) -> str:
        if workflow.patched("shout"):
            return await workflow.execute_activity(shout, "new", start_to_close_timeout=timedelta(seconds=5))
        return "old"


async def test_the_engine_patch_marker_is_drawn_the_same_way() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        async with Worker(env.client, task_queue="p", workflows=[Patched], activities=[shout]):
            handle = await env.client.start_workflow(Patched.run, id="patched", task_queue="p")
            assert await handle.result() == "NEW"
            history = await handle.fetch_history()
    rows = graphs.history_timeline_rows(history)
    assert [(r["kind"], r["title"]) for r in rows][:3] == [("start", "Workflow started"), ("patch", 'patched("shout")'),
                                                            ("activity", "shout")]


# --- child workflows ---------------------------------------------------------------------


def test_child_runs_given_are_drawn_nested_with_their_own_steps() -> None:
    graph = read(graphs.run_graph(fixture("child"), children=children()))
    assert {attrs["label"] for attrs in graph.clusters.values()} == {
        f"child run: GreetChild · {GREET_CHILD}", f"child run: FailingChild · {FAILING_CHILD}"
    }
    greet_step = graph.titled("child GreetChild")
    assert greet_step.attrs["shape"] == "box3d" and greet_step.fill == STATUS_COLOURS["ok"][0]
    inside = {n.title: n for n in graph.nodes.values() if n.cluster and GREET_CHILD in graph.clusters[n.cluster]["label"]}
    assert set(inside) == {"Workflow started", "greet", "Completed"}
    starts = graph.pairs(label="starts")
    assert (greet_step.name, inside["Workflow started"].name) in starts
    assert (inside["Completed"].name, greet_step.name) in graph.pairs(label="result", constraint="false")
    failing = [n for n in graph.nodes.values() if n.cluster and FAILING_CHILD in graph.clusters[n.cluster]["label"]]
    assert [n.title for n in failing if n.fill == STATUS_COLOURS["failed"][0]] == ["Failed"]
    # The parent is the graph itself: no "parent" note inside a nested child.
    assert not [n for n in graph.nodes.values() if n.title == "parent"]


def test_child_runs_not_given_are_notes_with_their_ids() -> None:
    history = fixture("child")
    graph = read(graphs.run_graph(history))
    assert graph.clusters == {}
    notes = [n for n in graph.nodes.values() if n.attrs.get("shape") == "note"]
    run_ids = [e.attributes["workflowExecution"]["runId"] for e in history.events
               if e.event_type == "ChildWorkflowExecutionStarted"]
    assert sorted(n.lines[1] for n in notes) == [FAILING_CHILD, GREET_CHILD]
    # Both children started in the same minute: their ids differ in the tail, not the head.
    assert {n.lines[2] for n in notes} == {f"run {run_id[-8:]}" for run_id in run_ids} and len(run_ids) == 2
    assert any(f"%workflow show --workflow-id {GREET_CHILD}" in n.attrs["tooltip"] for n in notes)
    step = graph.titled("child GreetChild")
    assert any({step.name, note.name} in graph.same_rank for note in notes)


def test_a_child_run_shows_its_parent() -> None:
    graph = read(graphs.run_graph(fixture("child_greet_child", GREET_CHILD)))
    parent = graph.titled("parent")
    assert parent.lines[1] == "fixture-child" and "started this run" in graph.edges[-1].attrs.get("label", "")


# --- continue-as-new ---------------------------------------------------------------------


def chain() -> list[History]:
    return [fixture(f"continue_as_new_{i}", "fixture-continue-as-new") for i in (1, 2, 3)]


def test_a_run_of_a_chain_points_at_the_runs_before_and_after_it() -> None:
    runs = chain()
    graph = read(graphs.run_graph(runs[1]))
    before, after = graph.titled("previous run"), graph.titled("next run")
    assert before.lines[1] == runs[0].run_id[-8:] and after.lines[1] == runs[2].run_id[-8:]
    continued = graph.titled("Continued as new")
    assert (continued.name, after.name) in graph.pairs(label="continue as new")
    assert (before.name, graph.titled("Workflow started").name) in graph.pairs(label="continued as new")
    first = read(graphs.run_graph(runs[0]))
    assert not first.starting("previous run") and len(first.starting("next run")) == 1
    assert not read(graphs.run_graph(runs[2])).starting("next run")


def test_the_chain_graph_boxes_each_run_and_links_them_with_the_next_input() -> None:
    runs = chain()
    graph = read(graphs.chain_graph(runs))
    assert [attrs["label"] for attrs in graph.clusters.values()] == [
        f"run 1 · {runs[0].run_id[-8:]} · continued as new",
        f"run 2 · {runs[1].run_id[-8:]} · continued as new",
        f"run 3 · {runs[2].run_id[-8:]} · completed",
    ]
    links = [e for e in graph.edges if e.attrs.get("label", "").startswith("continue as new")]
    assert [(graph.nodes[e.tail].cluster, graph.nodes[e.head].cluster) for e in links] == [
        ("cluster_r1", "cluster_r2"), ("cluster_r2", "cluster_r3")
    ]
    assert [e.attrs["label"] for e in links] == ["continue as new", "continue as new"]
    assert [graph.nodes[e.head].title for e in links] == ["Workflow started", "Workflow started"]
    assert not [n for n in graph.nodes.values() if n.attrs.get("shape") == "note"]
    assert graph.label == "ContinueAsNewWorkflow · fixture-continue-as-new · 3 runs"


def test_a_long_chain_draws_the_first_and_last_runs() -> None:
    runs = chain()
    graph = read(graphs.chain_graph([runs[0]] * 5 + [runs[2]] * 5, max_runs=4))
    assert sorted(graph.clusters) == ["cluster_r1", "cluster_r10", "cluster_r2", "cluster_r9"]
    assert graph.titled("... 6 more runs").attrs["tooltip"] == "runs 3 to 8 are not drawn"


def test_chain_view_tables_the_runs(monkeypatch: Any) -> None:
    import kernel_ext._graph_views as views

    monkeypatch.setattr(views, "render_svg", lambda dot, **_: None)
    runs = chain()
    view = ChainView(runs, title="counting")
    lines = view.to_text().splitlines()
    assert lines[0] == "counting: 3 runs linked by continue-as-new · the last one completed"
    assert lines[3].split()[:3] == ["1", runs[0].run_id[-8:], "continued"]
    assert lines[4].endswith("new run with (2)") and lines[5].endswith('result "done after 2 continue-as-new"')
    assert "install graphviz" in view.to_html()


@workflow.defn
class Countdown:
    @workflow.run
    async def run(self, left: int) -> str:
        await workflow.sleep(timedelta(days=1))
        if left > 0:
            workflow.continue_as_new(left - 1)
        return "liftoff"


async def test_an_engine_chain_links_the_same_way() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        async with Worker(env.client, task_queue="c", workflows=[Countdown]):
            handle = await env.client.start_workflow(Countdown.run, 2, id="countdown", task_queue="c")
            assert await handle.result() == "liftoff"
            last = await env.client.get_workflow_handle("countdown", run_id=handle.result_run_id).fetch_history()
    graph = read(graphs.run_graph(last))
    assert graph.titled("previous run") and not graph.starting("next run")
    assert graph.titled("Completed")


def _chain_with_run_ids(run_ids: list[str]) -> list[History]:
    """The fixture chain with its run ids replaced (in every event that names them)."""
    texts = [(HISTORIES / f"continue_as_new_{i}.json").read_text() for i in (1, 2, 3)]
    old = [History.from_json("c", text).run_id for text in texts]
    out = []
    for text in texts:
        for before, after in zip(old, run_ids):
            text = text.replace(before, after)
        out.append(History.from_json("fixture-continue-as-new", text))
    return out


def test_runs_of_a_chain_are_labelled_by_the_part_of_their_ids_that_differs(monkeypatch: Any) -> None:
    import kernel_ext._graph_views as views

    monkeypatch.setattr(views, "render_svg", lambda dot, **_: None)
    # UUIDv7 ids of one chain share their first 8 characters (the time); two of these also
    # share their last 8, so those two need a longer tail to be told apart.
    ids = ["019af3c2-0000-7000-8000-00000000aaaa", "019af3c2-0000-7000-8000-1111bbbbbbbb",
           "019af3c2-0000-7000-8000-2222bbbbbbbb"]
    runs = _chain_with_run_ids(ids)
    assert [run.run_id for run in runs] == ids
    labels = [attrs["label"].split(" · ")[1] for attrs in read(graphs.chain_graph(runs)).clusters.values()]
    assert labels == ["0000aaaa", "1bbbbbbbb", "2bbbbbbbb"]
    assert [line.split()[1] for line in ChainView(runs).to_text().splitlines()[3:6]] == labels
    assert read(graphs.run_graph(runs[1])).titled("previous run").lines[1] == "0000aaaa"


async def test_an_engine_chain_labels_each_run_differently() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        async with Worker(env.client, task_queue="c", workflows=[Countdown]):
            handle = await env.client.start_workflow(Countdown.run, 2, id="countdown", task_queue="c")
            await handle.result()
        found = await env.client.list_workflows("WorkflowId='countdown'", limit=None)
        runs = [await env.client.get_workflow_handle("countdown", run_id=d.run_id).fetch_history() for d in found]
    runs.sort(key=lambda run: run.events[0].event_time)
    labels = [attrs["label"].split(" · ")[1] for attrs in read(graphs.chain_graph(runs)).clusters.values()]
    assert len(set(labels)) == 3
    assert all(run.run_id.replace("-", "").endswith(label) for run, label in zip(runs, labels))


# --- loops --------------------------------------------------------------------------------


@activity.defn
async def charge(month: int) -> int:
    return month


@workflow.defn
class MonthlyCharges:
    @workflow.run
    async def run(self, months: int) -> int:
        for month in range(1, months + 1):
            await workflow.sleep(timedelta(days=30))
            await workflow.execute_activity(charge, month, start_to_close_timeout=timedelta(seconds=5))
        await workflow.execute_activity(charge, 0, start_to_close_timeout=timedelta(seconds=5))
        return months


async def _charges(months: int) -> History:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        async with Worker(env.client, task_queue="m", workflows=[MonthlyCharges], activities=[charge]):
            handle = await env.client.start_workflow(MonthlyCharges.run, months, id="monthly", task_queue="m")
            assert await handle.result() == months
            return await handle.fetch_history()


async def test_a_loop_of_two_steps_collapses_into_one_stacked_node() -> None:
    history = await _charges(12)
    graph = read(graphs.run_graph(history))
    loop = graph.titled("sleep 30d → charge x12")
    assert loop.attrs["peripheries"] == "2" and loop.fill == STATUS_COLOURS["ok"][0]
    assert "a loop of 2 steps, 12 rounds, all completed" in loop.attrs["label"].replace("\\n", " ")
    assert "first round: sleep 30d: timer 1 · fired; charge: activity 1" in loop.attrs["tooltip"]
    assert [n.title for n in graph.nodes.values()] == ["Workflow started", "sleep 30d → charge x12", "charge", "Completed"]
    rows = graphs.collapse_rows(graphs.history_timeline_rows(history))
    assert rows[1]["kind"] == "cycle" and rows[1]["count"] == 24 and rows[2]["step"] == 3


async def test_a_short_loop_is_drawn_step_by_step() -> None:
    graph = read(graphs.run_graph(await _charges(5)))
    assert len(graph.starting("sleep 30d")) == 5 and len(graph.starting("charge")) == 6


def test_a_non_determinism_failure_keeps_its_message_and_leaves_the_engine_trace_out() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    failures = [
        ("WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR", "Workflow task failed (non-determinism)",
         "Nondeterminism in workflow 'w' (W): history event 5 is ... Code line: cell.py:3 in run"),
        ("WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE", "Workflow task failed", "KeyError: 'x'"),
    ]
    for cause, title, message in failures:
        specs = [("WorkflowExecutionStarted", {"workflowType": {"name": "W"}}),
                 ("WorkflowTaskFailed", {"cause": cause, "failure": {"message": message, "stackTrace": "File engine/x.py\nboom"}})]
        history = History("w", tuple(HistoryEvent(i, k, t0, a) for i, (k, a) in enumerate(specs, start=1)))
        row = next(r for r in graphs.history_timeline_rows(history) if r["kind"] == "workflow_task_failed")
        assert row["title"] == title and f"message: {message}" in row["tooltip"]
        assert ("stack trace" in row["tooltip"]) is ("UNHANDLED" in cause)
