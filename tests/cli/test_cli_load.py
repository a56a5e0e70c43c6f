"""``dlab load``: a load test from the command line, its report files, its usage errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

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
