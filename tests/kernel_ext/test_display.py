"""Rich displays: the event table, the run view, escaping, and odd histories that must not break them."""

from __future__ import annotations

import base64
import json
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Worker
from engine.client import ActivityAttempt
from engine.history import KNOWN_EVENT_TYPES, History, HistoryEvent, encode_payload, load_history
from engine.testing import WorkflowEnvironment
from kernel_ext import display
from kernel_ext.display import EventTable, RunView

from tests.engine.workflows import MoneyTransfer, Refusing, Transfer, deposit, refuse, withdraw

SHARED = Path(__file__).resolve().parents[3] / "shared" / "histories"
SHARED_FILES = sorted(SHARED.glob("*.json")) if SHARED.is_dir() else []
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
NASTY = 'say "hi"\nthen <script>alert(1)</script> & a back\\slash'
JSON_PLAIN_B64 = base64.b64encode(b"json/plain").decode()


async def run_workflow(wf: Any, *args: Any, workflows: list[type], activities: list[Any]) -> tuple[
    History, list[ActivityAttempt]
]:
    env = await WorkflowEnvironment.start_time_skipping()
    try:
        async with Worker(env.client, task_queue="display", workflows=workflows, activities=activities):
            handle = await env.client.start_workflow(wf, args=list(args), id="display-run", task_queue="display")
            try:
                await handle.result()
            except Exception:  # noqa: BLE001 - failing runs are displayed too
                pass
            return await handle.fetch_history(), await handle.activity_attempts()
    finally:
        await env.shutdown()


async def money_transfer() -> tuple[History, list[ActivityAttempt]]:
    return await run_workflow(
        MoneyTransfer.run, Transfer("alice", "bob", 100), workflows=[MoneyTransfer], activities=[withdraw, deposit]
    )


def synthetic(*specs: tuple[str, Any]) -> History:
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    events = tuple(
        HistoryEvent(event_id=i, event_type=kind, event_time=t0 + timedelta(seconds=i), attributes=attrs)
        for i, (kind, attrs) in enumerate(specs, start=1)
    )
    return History(workflow_id="synthetic", events=events)


def nasty_history() -> History:
    return synthetic(
        ("WorkflowExecutionStarted", {"workflowType": {"name": NASTY}, "input": {"payloads": [encode_payload(NASTY)]}}),
        ("WorkflowExecutionSignaled", {"signalName": NASTY, "input": {"payloads": [encode_payload({NASTY: NASTY})]}}),
        ("ActivityTaskScheduled", {"activityId": NASTY, "activityType": {"name": NASTY}, "input": {"payloads": [encode_payload(NASTY)]}}),
        ("ActivityTaskFailed", {"scheduledEventId": "3", "failure": {"message": NASTY, "stackTrace": NASTY}}),
        ("WorkflowExecutionFailed", {"failure": {"message": NASTY, "cause": {"message": NASTY}}}),
    )


# --- EventTable ------------------------------------------------------------------------


async def test_event_table_reads_like_temporal_workflow_show() -> None:
    history, _ = await money_transfer()
    text = EventTable(history).to_text()
    lines = text.splitlines()
    assert re.match(r"ID\s+TIME\s+TYPE\s+DETAILS", lines[0])
    assert len(lines) == len(history) + 1
    # Aligned: the type column starts at the same place on every line.
    assert len({line.index(kind) for line, kind in zip(lines[1:], (e.event_type for e in history.events))}) == 1
    by_id = {int(line.split()[0]): line for line in lines[1:]}
    assert "withdraw id 1" in by_id[5] and "alice" in by_id[5]
    assert "deposit attempt 3 (last failure: bank bob unavailable (attempt 2))" in by_id[12]
    assert 'deposit → "deposited 100 into bob"' in by_id[13]
    assert by_id[1].split()[1] == "00:00:00.000"

    page = EventTable(history).to_html()
    assert page.count("<tr>") == len(history) + 1
    assert '<td style="text-align: left">ActivityTaskCompleted</td>' in page


async def test_detailed_event_table_decodes_every_payload() -> None:
    history, _ = await run_workflow(Refusing.run, workflows=[Refusing], activities=[refuse])
    text = EventTable(history, detailed=True).to_text()
    assert JSON_PLAIN_B64 not in text
    assert 'input: ["no"]' in text
    assert "stackTrace: |" in text and "raise ApplicationError" in text
    assert 'nonRetryable: true' in text
    page = EventTable(history, detailed=True).to_html()
    assert '<th style="text-align: left">Attributes</th>' in page and "<pre>" in page and JSON_PLAIN_B64 not in page


async def test_every_table_cell_is_left_aligned_by_its_own_style(monkeypatch: pytest.MonkeyPatch) -> None:
    # JupyterLab right-aligns output cells with a (0,2,1) rule, and drops <style> from the
    # outputs of an untrusted notebook: only a style on the cell itself holds everywhere
    # (tests/browser checks the computed alignment in JupyterLab and Notebook 7).
    monkeypatch.setattr(display, "render_svg", lambda dot, **_: None)
    history, attempts = await money_transfer()
    pages = [EventTable(history).to_html(), EventTable(history, detailed=True).to_html(), RunView(history, attempts).to_html(),
             display.SagaView(history, attempts).to_html(), display.ChainView([history]).to_html()]
    for page in pages:
        cells = re.findall(r"<t[dh]\b[^>]*>", page)
        assert cells and set(cells) == {'<td style="text-align: left">', '<th style="text-align: left">'}


def test_mimebundle_respects_include_and_exclude() -> None:
    table = EventTable(nasty_history())
    assert set(table._repr_mimebundle_()) == {"text/plain", "text/html"}
    assert set(table._repr_mimebundle_(include=["text/plain"])) == {"text/plain"}
    assert set(table._repr_mimebundle_(exclude=["text/html"])) == {"text/plain"}
    assert table._repr_mimebundle_(include=["image/png"]) == {}
    with mock.patch.object(display, "render_svg", side_effect=AssertionError("no graph for text/plain")):
        assert set(RunView(nasty_history())._repr_mimebundle_(include=["text/plain"])) == {"text/plain"}


def test_unknown_event_types_show_their_name() -> None:
    history = synthetic(
        ("WorkflowExecutionStarted", {"workflowType": {"name": "W"}}),
        ("WorkflowExecutionSomethingNew", {"failure": {"message": "odd"}}),
        ("EVENT_TYPE_NOT_EVEN_PASCAL_CASE", {}),
    )
    text = EventTable(history).to_text()
    assert re.search(r"WorkflowExecutionSomethingNew +odd", text) and "EVENT_TYPE_NOT_EVEN_PASCAL_CASE" in text
    assert "W()\n" in text
    view = RunView(history)
    assert [row["title"] for row in view.rows] == [
        "Workflow started", "WorkflowExecutionSomethingNew", "EVENT_TYPE_NOT_EVEN_PASCAL_CASE", "Running"
    ]


# --- RunView ---------------------------------------------------------------------------


async def test_run_view_text_is_a_summary_and_the_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    history, attempts = await money_transfer()
    view = RunView(history, attempts)
    text = view.to_text()
    assert text.startswith("MoneyTransfer · display-run: completed in ")
    assert "17 events · 2 activities (1 retried)" in text
    assert re.search(r"^3\s+events 11-13\s+retried\s+deposit\s+activity 2 · 3 attempts", text, flags=re.M)
    assert RunView(history, attempts, title="My transfer").to_text().startswith("My transfer: ")

    monkeypatch.setattr(display, "render_svg", lambda dot, **_: None)
    page = view.to_html()
    assert "install graphviz (apt-get install graphviz) for the graph" in page
    assert '<td style="text-align: left">deposit</td>' in page and "All 17 events" in page
    assert "attempt 1 failed: bank bob unavailable (attempt 1)" in page  # the row's tooltip


@needs_dot
async def test_run_view_html_embeds_a_deterministic_svg() -> None:
    history, attempts = await money_transfer()
    page = RunView(history, attempts).to_html()
    assert "<svg" in page and "</svg>" in page
    assert "<?xml" not in page and "Generated by graphviz" not in page
    assert page == RunView(history, attempts).to_html()
    assert "bank bob unavailable (attempt 1)" in page


def test_a_graph_survives_the_sanitizer_of_an_untrusted_notebook() -> None:
    # JupyterLab strips <svg> (keeping its text) and <style> from the outputs of a notebook
    # it does not trust, such as a tutorial just cloned: the graph comes twice, inline (shown
    # by the stylesheet, so only where styles are kept) and as an image (hidden by it).
    from kernel_ext._html import graph_html

    svg = '<svg xmlns="http://www.w3.org/2000/svg"><title>run</title><g id="node1"><text>Hello</text></g></svg>'
    page = graph_html("digraph {}", lambda dot: '<?xml version="1.0"?>\n' + svg)
    inline = re.search(r'<div class="durable-lab-svg" style="display: none;[^"]*">(.*?)</div>', page)
    assert inline and inline.group(1) == svg
    image = re.search(r'<img class="durable-lab-graph-image" [^>]*src="data:image/svg\+xml;base64,([^"]+)"', page)
    assert image and base64.b64decode(image.group(1)).decode() == svg
    # The rules hold only where the data-* attribute survived, that is in trusted outputs.
    assert page.startswith('<div class="durable-lab-graph" data-durable-lab="graph">')
    assert ".durable-lab-graph[data-durable-lab] .durable-lab-svg {display: block !important;}" in page
    assert ".durable-lab-graph[data-durable-lab] img.durable-lab-graph-image {display: none !important;}" in page


def test_run_view_shows_a_rendering_problem_instead_of_raising(monkeypatch: pytest.MonkeyPatch) -> None:
    def too_slow(dot: str, **_: Any) -> str:
        raise RuntimeError("Graphviz took more than 10 s: it is too large to draw. Use the table view <instead>")

    monkeypatch.setattr(display, "render_svg", too_slow)
    page = RunView(nasty_history()).to_html()
    assert "too large to draw. Use the table view &lt;instead&gt;" in page
    assert '<table class="durable-lab-table">' in page


def test_hostile_text_is_escaped_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    history = nasty_history()
    pages = [EventTable(history).to_html(), EventTable(history, detailed=True).to_html(), RunView(history).to_html()]
    for page in pages:
        assert "<script" not in page and "&lt;script&gt;" in page
    monkeypatch.setattr(display, "render_svg", lambda dot, **_: None)
    assert "<script" not in RunView(history).to_html()


def test_big_histories_fold_the_event_list() -> None:
    specs: list[tuple[str, Any]] = [("WorkflowExecutionStarted", {"workflowType": {"name": "Loop"}})]
    specs += [("WorkflowExecutionSignaled", {"signalName": "tick"})] * 600
    view = RunView(synthetic(*specs))
    assert "tick x600" in view.to_text()
    with mock.patch.object(display, "render_svg", return_value=None):
        page = view.to_html()
    assert "601 events: <code>EventTable(history)</code> lists them all." in page


@pytest.mark.skipif(not SHARED_FILES, reason="no shared histories (../shared/histories)")
@pytest.mark.parametrize("path", SHARED_FILES, ids=[p.stem for p in SHARED_FILES])
def test_shared_histories_display(path: Path) -> None:
    history = load_history(path)
    for detailed in (False, True):
        table = EventTable(history, detailed=detailed)._repr_mimebundle_()
        assert table["text/plain"] and "<table" in table["text/html"]
    bundle = RunView(history)._repr_mimebundle_()
    assert bundle["text/plain"].startswith(history.workflow_type)
    assert "could not render" not in bundle["text/html"]


# --- nothing in a history makes the displays raise ----------------------------------

_KEYS = [
    "scheduledEventId", "initiatedEventId", "startedEventId", "workflowTaskCompletedEventId", "acceptedEventId",
    "activityType", "workflowType", "name", "input", "result", "failure", "message", "cause", "payloads",
    "metadata", "encoding", "data", "timerId", "startToFireTimeout", "signalName", "markerName", "details",
    "attempt", "lastFailure", "outcome", "success", "meta", "updateId", "acceptedRequest", "request",
    "searchAttributes", "indexedFields", "workflowExecution", "workflowId", "protocolInstanceId", "stackTrace",
]
_payloads = st.one_of(
    st.builds(lambda v: {"payloads": [encode_payload(v)]}, st.text(max_size=10) | st.integers()),
    st.just({"payloads": [{"metadata": {"encoding": "!!"}, "data": "%%"}]}),
    st.just({"payloads": [{"metadata": {"encoding": base64.b64encode(b"binary/plain").decode()}, "data": "AAE="}]}),
    st.just({"payloads": "not a list"}),
)
_leaf = st.none() | st.booleans() | st.integers(-3, 15) | st.integers(0, 15).map(str) | st.text(max_size=12) | _payloads
_values = st.recursive(
    _leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=4),
    max_leaves=12,
)
_event_types = st.sampled_from(sorted(KNOWN_EVENT_TYPES) + ["Mystery", ""])
_attributes = st.dictionaries(st.sampled_from(_KEYS), _values, max_size=6)
_times = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(timezone.utc) | st.none()
)


@st.composite
def odd_histories(draw: st.DrawFn) -> History:
    specs = draw(st.lists(st.tuples(_event_types, _attributes, _times), max_size=14))
    events = tuple(
        HistoryEvent(event_id=i, event_type=kind, event_time=when, attributes=attrs)
        for i, (kind, attrs, when) in enumerate(specs, start=1)
    )
    return History(workflow_id=draw(st.text(max_size=8)), events=events)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(odd_histories())
def test_odd_histories_never_break_the_displays(history: History) -> None:
    for detailed in (False, True):
        EventTable(history, detailed=detailed)._repr_mimebundle_()
    bundle = RunView(history)._repr_mimebundle_()
    assert bundle["text/plain"]
    # With Graphviz installed this also proves `dot` accepts whatever DOT we wrote.
    assert "could not render" not in bundle["text/html"]


# --- histories without event times (temporalio accepts them; so do the views) -------------

_PROJECT_HISTORIES = sorted(
    p for p in (Path(__file__).resolve().parents[1] / "histories").glob("*.json") if p.name != "recorded_with.json"
)


@pytest.mark.parametrize("path", _PROJECT_HISTORIES + SHARED_FILES, ids=lambda p: p.stem)
def test_histories_without_times_display(path: Path) -> None:
    timed = load_history(path)
    history = History.from_json(path.stem, _without_times(json.loads(path.read_text(encoding="utf-8"))))
    assert all(e.event_time is None for e in history)
    for detailed in (False, True):
        table = EventTable(history, detailed=detailed)._repr_mimebundle_()
        assert table["text/plain"] and "<table" in table["text/html"]
    with mock.patch.object(display, "render_svg", return_value=None):
        bundle = RunView(history)._repr_mimebundle_()
    assert bundle["text/plain"].startswith(history.workflow_type)
    assert "could not render" not in bundle["text/html"]


def _without_times(document: dict[str, Any]) -> dict[str, Any]:
    for event in document["history"]["events"] if "history" in document else document["events"]:
        event.pop("eventTime", None)
    return document
