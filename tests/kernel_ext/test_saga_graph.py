"""The saga view: forward steps, the failure, compensations running back, each tied to the
step it undoes; from engine runs (engine.saga.Saga, sequential and parallel) and from a
real Temporal history (tests/histories/saga.json, compensations written by hand)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from engine import Worker, activity, workflow
from engine.common import RetryPolicy
from engine.errors import ActivityError, ApplicationError
from engine.history import History, encode_payload, load_history
from engine.saga import Saga
from engine.testing import WorkflowEnvironment
from kernel_ext import graphs
from kernel_ext._dot import COMPENSATION_COLOURS, STATUS_COLOURS
from kernel_ext.display import SagaView

from tests.kernel_ext.dot_reading import Graph, read

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
NO_RETRY = RetryPolicy(maximum_attempts=1)
FIVE = timedelta(seconds=5)
OK, FAILED, PURPLE = STATUS_COLOURS["ok"][0], STATUS_COLOURS["failed"][0], COMPENSATION_COLOURS[0]


@activity.defn
async def reserve_car(name: str) -> str:
    return f"car-for-{name}"


@activity.defn
async def book_hotel(name: str) -> str:
    return f"hotel-for-{name}"


@activity.defn
async def book_flight(name: str) -> str:
    if name != "lucky":
        raise ApplicationError("no seats left", type="SoldOut", non_retryable=True)
    return f"flight-for-{name}"


@activity.defn
async def cancel_car(what: str) -> str:
    return f"cancelled {what}"


@activity.defn
async def cancel_hotel(what: str) -> str:
    if what == "refuse":
        raise ApplicationError("the hotel keeps the deposit", non_retryable=True)
    return f"cancelled {what}"


@workflow.defn
class TripBooking:
    """The seed's trip: car, hotel, flight. ``undo_with`` says what the compensations get:
    the booking ids (``"ids"``), the traveller's name (``"name"``), or for the hotel a
    value it refuses (``"refuse"``)."""

    @workflow.run
    async def run(self, name: str, parallel: bool, undo_with: str) -> str:
        saga = Saga(parallel_compensation=parallel, continue_with_error=undo_with == "refuse")
        try:
            car = await workflow.execute_activity(reserve_car, name, start_to_close_timeout=FIVE, retry_policy=NO_RETRY)
            saga.add_compensation(cancel_car, car if undo_with == "ids" else name, retry_policy=NO_RETRY)
            hotel = await workflow.execute_activity(book_hotel, name, start_to_close_timeout=FIVE, retry_policy=NO_RETRY)
            saga.add_compensation(cancel_hotel, {"ids": hotel, "name": name}.get(undo_with, "refuse"), retry_policy=NO_RETRY)
            await workflow.execute_activity(book_flight, name, start_to_close_timeout=FIVE, retry_policy=NO_RETRY)
        except ActivityError:
            await saga.compensate()
            raise
        return "booked"


async def book(name: str = "Ada", *, parallel: bool = False, undo_with: str = "ids") -> History:
    env = await WorkflowEnvironment.start_time_skipping()
    try:
        activities = [reserve_car, book_hotel, book_flight, cancel_car, cancel_hotel]
        async with Worker(env.client, task_queue="trips", workflows=[TripBooking], activities=activities):
            handle = await env.client.start_workflow(TripBooking.run, args=[name, parallel, undo_with], id="trip", task_queue="trips")
            try:
                await handle.result()
            except Exception:  # noqa: BLE001 - the failed trip is what we draw
                pass
            return await handle.fetch_history()
    finally:
        await env.shutdown()


def forward_and_back(graph: Graph) -> tuple[list[str], list[str]]:
    forward = sorted((n for n in graph.nodes if n.startswith("f")), key=lambda n: int(n[1:]))
    back = sorted((n for n in graph.nodes if n.startswith("c")), key=lambda n: tuple(map(int, n[1:].split("_"))))
    return forward, back


async def test_sequential_compensations_run_back_one_after_another() -> None:
    graph = read(graphs.saga_dot(await book()))
    forward, back = forward_and_back(graph)
    assert [graph.nodes[n].title for n in forward] == ["step 1: reserve_car", "step 2: book_hotel", "step 3: book_flight"]
    assert [graph.nodes[n].fill for n in forward] == [OK, OK, FAILED]
    assert back == ["c0_0", "c1_0"]
    assert [graph.nodes[n].title for n in back] == ["cancel_hotel", "cancel_car"]
    assert all(graph.nodes[n].fill == PURPLE for n in back)
    assert graph.nodes["c0_0"].lines[1] == "undoes step 2: book_hotel"
    assert graph.nodes["c1_0"].lines[1] == "undoes step 1: reserve_car"
    # Forward edges go start -> f0 -> f1 -> f2; compensation edges are declared backwards
    # (dir=back) so Graphviz lays them out right to left, from the failure to the end.
    assert {("start", "f0"), ("f0", "f1"), ("f1", "f2")} <= {(e.tail, e.head) for e in graph.edges if not e.attrs}
    assert graph.pairs(dir="back", color=COMPENSATION_COLOURS[1]) >= {("c0_0", "f2"), ("c1_0", "c0_0"), ("end", "c1_0")}
    undo = graph.pairs(style="dashed", label="undoes")
    assert undo == {("f1", "c0_0"), ("f0", "c1_0")}
    assert {"f1", "c0_0"} in graph.same_rank and {"f0", "c1_0"} in graph.same_rank
    assert graph.nodes["end"].title == "Failed" and graph.nodes["end"].fill == FAILED
    assert "2 of 3 steps completed" in graph.label and "2 compensations one after another, 2 completed" in graph.label


async def test_parallel_compensations_fan_out_from_the_failure_and_join_at_the_end() -> None:
    graph = read(graphs.saga_dot(await book(parallel=True)))
    _, back = forward_and_back(graph)
    assert back == ["c0_0", "c0_1"]  # one group: scheduled by the same workflow task
    assert graph.pairs(dir="back", color=COMPENSATION_COLOURS[1]) >= {
        ("c0_0", "f2"), ("c0_1", "f2"), ("end", "c0_0"), ("end", "c0_1")
    }
    assert ("c0_1", "c0_0") not in {(e.tail, e.head) for e in graph.edges}
    links = {graph.nodes[c].title: f for f, c in graph.pairs(label="undoes")}
    assert links == {"cancel_hotel": "f1", "cancel_car": "f0"}
    assert "in parallel" in graph.label


async def test_without_data_to_match_the_summary_number_ties_a_compensation_to_its_step() -> None:
    history = await book(undo_with="name")  # both compensations get "Ada": no result to match
    plan = graphs.saga_plan(graphs.history_timeline_rows(history))
    assert [(link.compensation["title"], link.forward, link.how) for link in plan.links] == [
        ("cancel_hotel", 1, "compensation 2 was added after step 2"),
        ("cancel_car", 0, "compensation 1 was added after step 1"),
    ]


async def test_a_failed_compensation_is_red_and_the_others_still_ran() -> None:
    history = await book(undo_with="refuse")
    graph = read(graphs.saga_dot(history))
    hotel, car = graph.titled("cancel_hotel"), graph.titled("cancel_car")
    assert hotel.fill == FAILED and car.fill == PURPLE
    assert "1 completed" in graph.label
    assert "1 compensation(s) failed" in graph.nodes["end"].attrs["tooltip"]


async def test_a_saga_where_nothing_failed_is_its_steps_and_its_end() -> None:
    graph = read(graphs.saga_dot(await book("lucky")))
    forward, back = forward_and_back(graph)
    assert len(forward) == 3 and back == []
    assert graph.nodes["end"].title == "Completed"
    assert ("f2", "end") in {(e.tail, e.head) for e in graph.edges}
    assert "nothing failed, nothing to compensate" in graph.label


def test_real_temporal_saga_history_compensations_found_by_position_and_tied_by_data() -> None:
    history = load_history(HISTORIES / "saga.json")
    plan = graphs.saga_plan(graphs.history_timeline_rows(history))
    assert not plan.by_summary
    assert [row["input"] for row in plan.forward] == [["hotel"], ["flight"], ["car"]]
    assert plan.trigger is plan.forward[-1] and plan.trigger["status"] == "failed"
    assert [[row["input"] for row in group] for group in plan.groups] == [[["flight-booking-1"]], [["hotel-booking-1"]]]
    assert [(link.forward, link.how) for link in plan.links] == [
        (1, "its input is that step's result"), (0, "its input is that step's result")
    ]
    graph = read(graphs.saga_dot(history))
    assert graph.pairs(label="undoes") == {("f1", "c0_0"), ("f0", "c1_0")}
    assert graph.nodes["f2"].fill == FAILED and "no cars left" in graph.nodes["f2"].attrs["label"]
    assert graph.nodes["end"].title == "Failed"


def _synthetic_saga(undo_inputs: list[Any]) -> History:
    """Two steps, a failing third, then compensations with the given inputs, no summaries."""
    from datetime import datetime, timezone

    from engine.history import HistoryEvent

    specs: list[tuple[str, dict[str, Any]]] = [("WorkflowExecutionStarted", {"workflowType": {"name": "Hand"}})]
    names = ["a", "b", "c"] + [f"undo{i}" for i in range(len(undo_inputs))]
    inputs: list[Any] = ["x", "x", "x", *undo_inputs]
    for index, (name, value) in enumerate(zip(names, inputs)):
        specs += [("WorkflowTaskScheduled", {}), ("WorkflowTaskStarted", {}), ("WorkflowTaskCompleted", {})]
        completed = len(specs)
        specs.append(("ActivityTaskScheduled", {"activityId": str(index + 1), "activityType": {"name": name},
                                                "input": {"payloads": [encode_payload(value)]},
                                                "workflowTaskCompletedEventId": str(completed)}))
        scheduled = len(specs)
        if name == "c":
            specs.append(("ActivityTaskFailed", {"scheduledEventId": str(scheduled), "failure": {"message": "boom"}}))
        else:
            specs.append(("ActivityTaskCompleted", {"scheduledEventId": str(scheduled),
                                                    "result": {"payloads": [encode_payload("same")]}}))
    specs.append(("WorkflowExecutionFailed", {"failure": {"message": "boom"}}))
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return History("hand", tuple(HistoryEvent(i, kind, t0 + timedelta(seconds=i), attrs)
                                 for i, (kind, attrs) in enumerate(specs, start=1)))


def test_without_summaries_or_distinct_results_compensations_pair_in_reverse_order() -> None:
    plan = graphs.saga_plan(graphs.history_timeline_rows(_synthetic_saga(["same", "same"])))
    assert [(link.compensation["title"], link.forward) for link in plan.links] == [("undo0", 1), ("undo1", 0)]
    assert all(link.how == "compensations run in reverse order" for link in plan.links)


def test_more_compensations_than_completed_steps_leave_the_extra_one_unlinked() -> None:
    history = _synthetic_saga(["p", "q", "r"])
    plan = graphs.saga_plan(graphs.history_timeline_rows(history))
    assert len(plan.compensations) == 3 and len(plan.links) == 2
    graph = read(graphs.saga_dot(history))
    assert len(graph.pairs(label="undoes")) == 2
    assert len(graph.nodes["c2_0"].lines) == 3  # title, detail, events: no "undoes" line


async def test_saga_view_lists_roles_and_what_each_compensation_undoes(monkeypatch: Any) -> None:
    import kernel_ext._graph_views as views

    monkeypatch.setattr(views, "render_svg", lambda dot, **_: "<svg>saga</svg>")
    view = SagaView(await book(parallel=True), title="trip")
    text = view.to_text()
    assert text.startswith("trip: saga · 2 of 3 steps completed · book_flight failed · 2 compensations in parallel")
    lines = text.splitlines()
    assert any(line.startswith("step 3 (failed)") and "book_flight" in line for line in lines)
    assert sum("compensation (parallel)" in line and "compensated" in line for line in lines) == 2
    assert any("cancel_car" in line and "step 1: reserve_car" in line for line in lines)
    markup = view.to_html()
    assert "<svg>saga</svg>" in markup and "step 2: book_hotel" in markup
    assert f"background:{STATUS_COLOURS['ok'][0]}" in markup and f"background:{FAILED}" in markup
    assert view._repr_mimebundle_(include=["text/plain"]) == {"text/plain": text}
