"""engine.loadtest: scenario counts, metrics from histories, the report, a driver killed mid-test."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.client import Client
from engine.history import History, HistoryEvent
from engine._persistence.event_rows import type_value
from engine.loadtest import (
    Scenario, Step, StepRow, TargetConfig, build_report, parse_steps, percentile, plan, ramp, run_load_test, run_record,
)
from engine._load.report import capacity, finding, knee_index

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ scenario counts
def test_duration_step_offers_rate_times_seconds() -> None:
    assert Step(5, duration=3).offered() == [5, 5, 5]
    assert Step(2.5, duration=4).offered() == [3, 2, 3, 2]  # fractions carry over: 10 in all


def test_count_step_offers_exactly_its_count() -> None:
    assert Step(4, count=10).offered() == [4, 4, 2]


def test_ramp_rises_and_stairs_have_a_step_each() -> None:
    (linear,) = ramp(0, 10, seconds=5)
    counts = linear.offered()
    assert counts == sorted(counts) and sum(counts) == 25
    assert [s.rate for s in ramp(10, 30, step=10, seconds=2)] == [10, 20, 30]


@given(rate=st.floats(0, 200), seconds=st.integers(1, 30), to=st.one_of(st.none(), st.floats(0, 200)))
@settings(max_examples=200, deadline=None)
def test_duration_steps_offer_whole_runs_summing_to_the_rate_over_time(rate: float, seconds: int, to: float | None) -> None:
    counts = Step(rate, duration=seconds, to_rate=to).offered()
    assert len(counts) == seconds and all(c >= 0 for c in counts)
    end = rate if to is None else to
    assert sum(counts) == round(sum(rate + (end - rate) * (k + 0.5) / seconds for k in range(seconds)))


@given(rate=st.floats(0.1, 100), count=st.integers(1, 500))
@settings(max_examples=200, deadline=None)
def test_count_steps_offer_their_count(rate: float, count: int) -> None:
    counts = Step(rate, count=count).offered()
    assert sum(counts) == count and all(c >= 0 for c in counts)


def test_plan_numbers_the_seconds_of_each_step() -> None:
    p = plan(Scenario([Step(3, duration=2), Step(5, count=7)], max_in_flight=4, seed=1))
    assert p.offered == [3, 3, 5, 2]
    assert p.step_of_second == [0, 0, 1, 1]
    assert p.max_in_flight == 4 and p.scenario["steps"] == ["3/s for 2 s", "7 runs at 5/s"]


def test_parse_steps_reads_every_form() -> None:
    assert parse_steps("20:10s, 20/s:200, 10-50:30s, 10-30+10:5s") == [
        Step(20, duration=10), Step(20, count=200), Step(10, duration=30, to_rate=50),
        Step(10, duration=5), Step(20, duration=5), Step(30, duration=5),
    ]


@pytest.mark.parametrize("text, words", [("fast", "not understood"), ("10-20:30", "lasts a time"), ("", "No steps")])
def test_parse_steps_says_what_to_write(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_steps(text)


@pytest.mark.parametrize("make, words", [
    (lambda: Step(5), "duration .* or a count"),
    (lambda: Step(5, duration=2, count=3), "one of the two"),
    (lambda: Step(5, count=10, to_rate=3), "needs a duration"),
    (lambda: Scenario([]), "at least one Step"),
    (lambda: Scenario([Step(1, duration=1)], name="a b"), "letters, digits"),
    (lambda: TargetConfig(activity_failure_rate=1.0), "probability below 1"),
    (lambda: TargetConfig(activities=-1), "0 or more"),
])
def test_bad_scenarios_are_refused_with_the_fix(make, words) -> None:
    with pytest.raises(ValueError, match=words):
        make()


# ------------------------------------------------------------------ metrics from histories
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _event(event_id: int, event_type: str, ms: int, **attrs: object) -> HistoryEvent:
    return HistoryEvent(event_id, event_type, T0 + timedelta(milliseconds=ms), attrs)


def test_run_record_measures_what_the_history_says() -> None:
    events = (
        _event(1, "WorkflowExecutionStarted", 0),
        _event(2, "WorkflowTaskScheduled", 0),
        _event(3, "WorkflowTaskStarted", 40, scheduledEventId="2"),
        _event(4, "WorkflowTaskCompleted", 50),
        _event(5, "ActivityTaskScheduled", 50),
        _event(6, "ActivityTaskStarted", 250, scheduledEventId="5", attempt=3),
        _event(7, "ActivityTaskCompleted", 300),
        _event(8, "WorkflowTaskScheduled", 300),
        _event(9, "WorkflowTaskStarted", 310, scheduledEventId="8"),
        _event(10, "WorkflowTaskCompleted", 320),
        _event(11, "WorkflowExecutionCompleted", 320),
    )
    r = run_record(History("b/run-000001", events), step=2)
    assert (r.status, r.step, r.workflow_tasks, r.activities, r.activity_attempts) == ("Completed", 2, 2, 1, 3)
    assert r.start == T0.timestamp() and r.end == pytest.approx(T0.timestamp() + 0.32)
    assert r.latency == pytest.approx(0.32)
    assert r.workflow_task_wait_mean == pytest.approx(0.025) and r.workflow_task_wait_max == pytest.approx(0.04)
    assert r.activity_wait_mean == pytest.approx(0.2) and r.activity_wait_max == pytest.approx(0.2)


def test_an_open_run_has_no_end_and_a_foreign_history_is_refused() -> None:
    r = run_record(History("w", (_event(1, "WorkflowExecutionStarted", 0),)))
    assert (r.status, r.end, r.latency, r.workflow_task_wait_max) == ("Running", None, None, None)
    with pytest.raises(ValueError, match="does not begin with WorkflowExecutionStarted"):
        run_record(History("w", (_event(1, "WorkflowTaskScheduled", 0),)))


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 99) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile(list(range(101)), 99) == 99


def _row(rate: float, *, keeps_up: bool, growth: float = 0.0, p99: float | None = 0.1, waiting: int = 0) -> StepRow:
    return StepRow(0, f"{rate:g}/s", 5, 5.0, rate, 0, rate, 0, 0, rate, 0.05, 0.08, p99, 0, 0, growth, waiting, 0.5, 0.0, keeps_up)


def test_finding_names_the_last_rate_that_kept_up_and_what_broke() -> None:
    text = finding([_row(10, keeps_up=True), _row(20, keeps_up=True), _row(30, keeps_up=False, growth=12, p99=1.7)], 1.0)
    assert text == "Up to 20 runs/s the backlog stays flat and p99 stays under 1 s; at 30 runs/s the backlog grows by 12 tasks/s and p99 reaches 1.70 s (over 1 s)."
    assert finding([_row(10, keeps_up=True)], 1.0).startswith("Every step kept up: up to 10 runs/s")
    assert finding([_row(5, keeps_up=False, waiting=40)], 1.0) == "Even the first step did not keep up; at 5 runs/s 40 runs wait to be started."


def test_a_step_that_stumbles_and_recovers_is_not_the_knee() -> None:
    steps = [_row(10, keeps_up=False, growth=4), _row(20, keeps_up=True), _row(30, keeps_up=True), _row(40, keeps_up=False, p99=2.0)]
    assert knee_index(steps) == 3 and capacity(steps) == 30
    assert finding(steps, 1.0) == (
        "Up to 30 runs/s the backlog stays flat and p99 stays under 1 s (the step at 10 runs/s did not keep up but later "
        "ones did: workers warming up, or the machine busy for a moment); at 40 runs/s p99 reaches 2.00 s (over 1 s)."
    )
    assert knee_index(steps[:3]) is None and capacity([_row(10, keeps_up=False)]) is None


# ------------------------------------------------------------------ a small test, end to end
SMALL = Scenario([Step(4, duration=2), Step(6, count=6)], target=TargetConfig(activities=2, timers=1, timer_seconds=0.05, signals=1, children=1),
                 drain_seconds=30, name="small")


async def test_a_small_scenario_starts_what_it_offers_and_reports_it(tmp_path: Path) -> None:
    samples: list[dict] = []
    db = str(tmp_path / "load.db")
    report = await run_load_test(SMALL, db_path=db, processes=0, bench_id="small-1", on_sample=samples.append)
    assert len(report.runs) == 14 and all(r.status == "Completed" for r in report.runs)
    assert [sum(r.step == i for r in report.runs) for i in (0, 1)] == [8, 6]
    assert [r.workflow_id for r in report.runs] == [f"small-1/run-{n:06d}" for n in range(14)]
    assert [s["offered"] for s in report.seconds[:3]] == [4, 4, 6]
    assert sum(s["started"] for s in report.seconds) == 14 and report.seconds[-1]["closed_total"] == 14
    assert [s.started for s in report.steps] == [8, 6]
    # Every recorded second was also handed to on_sample (a tick tried again hands it twice).
    assert sorted({s["second"] for s in samples}) == [s["second"] for s in report.seconds]
    assert all(r.activities == 2 and r.workflow_tasks >= 4 for r in report.runs)
    # The report rebuilt from the database alone is the same.
    client = await Client.connect(db)
    try:
        again = await build_report(client, "small-1")
        children = await client.store.read(lambda c: c.execute("SELECT count(*) FROM executions WHERE workflow_id LIKE 'small-1/child-%'").fetchone()[0])
    finally:
        await client.close()
    assert again.runs == report.runs and again.seconds == report.seconds and children == 14
    # Run records agree with the histories they came from.
    for record in report.runs[:3]:
        client = await Client.connect(db)
        try:
            history = await client.get_workflow_handle(record.workflow_id).fetch_history()
        finally:
            await client.close()
        assert record.latency == pytest.approx((history.events[-1].event_time - history.events[0].event_time).total_seconds(), abs=1e-5)
        assert record.workflow_tasks == sum(e.event_type == "WorkflowTaskStarted" for e in history.events)


async def test_the_cap_holds_runs_back(tmp_path: Path) -> None:
    capped = Scenario([Step(10, count=10)], target=TargetConfig(activities=1, activity_latency=0.3), max_in_flight=3, name="capped")
    report = await run_load_test(capped, db_path=str(tmp_path / "load.db"), processes=0, bench_id="capped-1")
    first = report.seconds[0]
    assert first["started"] == 3 and first["waiting_to_start"] == 7
    assert len(report.runs) == 10 and all(s["in_flight"] <= 3 for s in report.seconds)


async def test_report_files(tmp_path: Path) -> None:
    report = await run_load_test(Scenario([Step(3, count=3)], name="files"), db_path=str(tmp_path / "load.db"), processes=0, bench_id="files-1")
    folder = report.write(tmp_path / "out")
    runs = list(csv.DictReader(io.StringIO((folder / "runs.csv").read_text())))
    seconds = list(csv.DictReader(io.StringIO((folder / "seconds.csv").read_text())))
    summary = json.loads((folder / "summary.json").read_text())
    assert len(runs) == 3 and {r["status"] for r in runs} == {"Completed"}
    assert len(seconds) == len(report.seconds) and seconds[0]["offered"] == "3"
    assert summary["runs"] == 3 and summary["completed"] == 3 and summary["finding"] == report.finding
    page = report.write_html(tmp_path / "out" / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and 'src="data:image/svg+xml;base64,' in page and "3 runs at 3/s" in page
    assert "<script" not in page


# ------------------------------------------------------------------ the driver killed mid-test
def _ticks_done(db: str, bench_id: str) -> int:
    if not os.path.exists(db):
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute(
            "SELECT count(*) FROM events e JOIN executions x ON x.id = e.run WHERE x.workflow_id = ? AND e.event_type = ?",
            (bench_id, type_value("ActivityTaskCompleted")),
        ).fetchone()
        return int(row[0])
    except sqlite3.OperationalError:
        return 0  # the schema is not there yet
    finally:
        conn.close()


def test_the_bench_survives_a_sigkill_of_its_driver_and_finishes(tmp_path: Path) -> None:
    db = str(tmp_path / "load.db")
    command = [sys.executable, "-m", "engine.cli", "load", "run", "--steps", "4:6s", "--processes", "0", "--bench-id", "kill-1",
               "--db", db, "--report", str(tmp_path / "unused"), "--name", "kill"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while _ticks_done(db, "kill-1") < 2:
            assert driver.poll() is None, "the driver ended before it was killed"
            assert time.monotonic() < deadline, "the bench made no progress"
            time.sleep(0.1)
        os.kill(driver.pid, signal.SIGKILL)
    finally:
        driver.kill()
        driver.wait()
    assert not (tmp_path / "unused").exists()  # killed before its report

    report = asyncio.run(run_load_test(Scenario([Step(4, duration=6)], name="kill"), db_path=db, processes=0, bench_id="kill-1"))
    assert len(report.runs) == 24 and all(r.status == "Completed" for r in report.runs)  # each run once, none lost
    assert [s["second"] for s in report.seconds][:6] == [0, 1, 2, 3, 4, 5]
    assert report.seconds[-1]["started_total"] == 24


def test_the_figure_has_four_panels_with_their_legends() -> None:
    from engine._load.plots import LoadFigure

    sample = dict(offered=4, started=4, closed=3, latency_p50=0.1, latency_p95=0.2, latency_p99=None, backlog_workflow_tasks=1,
                  backlog_activity_tasks=0, waiting_to_start=0, in_flight=1, cpu={"driver": 0.1, "worker-0": 0.2}, lock_wait={"driver": 0.0})
    figure = LoadFigure(seconds=10).update([dict(sample, second=i) for i in range(3)])
    legends = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in figure.axes]
    assert legends[0] == ["offered", "started", "achieved (closed)"]
    assert "CPU worker-0" in legends[3] and "write-lock wait (s/s)" in legends[3]
    assert figure.rates.get_xlim() == (-0.5, 9.5)  # a live figure keeps the test's length


def test_public_names_of_loadtest() -> None:
    import engine.loadtest as lt

    assert set(lt.__all__) == {
        "Step", "ramp", "parse_steps", "STEP_SYNTAX", "Scenario", "TargetConfig", "plan", "run_load_test", "build_report",
        "run_record", "LoadReport", "RunRecord", "StepRow", "percentile", "SYNCHRONOUS", "TargetSystem", "live_figure", "figure_png",
        "TemporalServer", "report_target",
    }
    assert all(hasattr(lt, name) for name in lt.__all__)


async def test_your_workflow_needs_its_code(tmp_path: Path) -> None:
    mine = Scenario([Step(1, count=1)], workflow="Mine")
    with pytest.raises(ValueError, match="give module= or file="):
        await run_load_test(mine, db_path=str(tmp_path / "a.db"), processes=1)
    with pytest.raises(ValueError, match="give workflows="):
        await run_load_test(mine, db_path=str(tmp_path / "a.db"), processes=0)
