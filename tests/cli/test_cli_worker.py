"""``dlab worker`` processes over a shared database file: serving, stopping, and being killed."""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import signal
import time
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Callable

import pytest

from engine import Client
from engine.cli._loader import definitions
from engine.cli._common import CliError
from tests.cli import app
from tests.cli.helpers import QUEUE, ROOT, Result, worker_command

Dlab = Callable[..., Result]
READY_TIMEOUT = 30.0


def _wait_ready(proc: subprocess.Popen[str]) -> str:
    """The worker's ready line (fail with its stderr if it never comes)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("dlab worker ready"):
        proc.kill()
        raise AssertionError(f"worker did not start: {line!r}\n{proc.communicate()[1]}")
    return line


def _spawn(*argv: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(list(argv), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def test_worker_from_a_file_serves_execute_and_stops_on_sigterm(dlab: Dlab, tmp_path: Path) -> None:
    db = tmp_path / "engine.db"
    worker = _spawn(*worker_command(db, "--file", "tests/cli/app.py", "--workflow", "Hello", "--workflow", "Boom", "--workflow", "Collector", "--activity", "greet"))
    try:
        ready = _wait_ready(worker)
        assert f"task queue '{QUEUE}'; workflows: Hello, Boom, Collector; activities: greet;" in ready
        executed = dlab("workflow", "execute", "--db", str(db), "--type", "Hello", "-t", QUEUE, "-w", "x-1", "-i", '"Cy"')
        assert executed.code == 0, executed.err
        assert "Progress:" in executed.out and re.search(r"^ +11  \S+  WorkflowExecutionCompleted$", executed.out, re.M)
        assert re.search(r'^  Result +"Hello, Cy!"$', executed.out, re.M)
        failed = dlab("workflow", "execute", "--db", str(db), "--type", "Boom", "-t", QUEUE, "-i", '"x"')
        assert failed.code == 1 and failed.err == "Error: workflow failed: boom: x (Boom)\n"
        as_json = json.loads(dlab("workflow", "execute", "--db", str(db), "--type", "Hello", "-t", QUEUE, "-i", '"Di"', "-o", "json").out)
        # A query without --module/--file is answered by the worker process, which has the code.
        started = dlab("workflow", "start", "--db", str(db), "--type", "Collector", "-t", QUEUE, "-w", "q-1", "-i", '"Hi"')
        assert started.code == 0, started.err
        dlab("workflow", "signal", "--db", str(db), "-w", "q-1", "--name", "add", "-i", '"Ann"')
        for _ in range(100):
            asked = dlab("workflow", "query", "--db", str(db), "-w", "q-1", "--name", "tally", "-o", "json")
            if asked.code == 0 and json.loads(asked.out)["queryResult"][0]["count"] == 1:
                break
            time.sleep(0.05)
        assert json.loads(asked.out) == {"queryResult": [{"count": 1, "names": ["Ann"]}]}
        assert as_json["status"] == "COMPLETED" and as_json["result"] == "Hello, Di!" and as_json["type"] == "Hello"
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=20)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, err
    assert out.strip().splitlines()[-1].startswith("dlab worker stopped: ")
    assert "Stopping (SIGTERM)" in err


async def _kill_and_recover(db: Path, log: Path) -> tuple[int, list[list[str]], list[int]]:
    env = {"DLAB_TEST_LOG": str(log), "DLAB_TEST_STEP_SECONDS": "0.3"}
    client = await Client.connect(str(db))
    first = second = None
    try:
        handle = await client.start_workflow(app.Steps.run, 4, id="steps-1", task_queue=QUEUE, task_timeout=timedelta(seconds=1))
        first = _spawn(*worker_command(db, "--module", "tests.cli.app"), env=env)
        await asyncio.to_thread(_wait_ready, first)
        for _ in range(1000):  # until step 1's completion is recorded: step 2 is under way
            events = (await handle.fetch_history()).events
            if any(e.event_type == "ActivityTaskCompleted" for e in events):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the first worker never completed step 1")
        await asyncio.sleep(0.1)  # step 2 (0.3 s) is claimed by now: the kill lands inside it
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = _spawn(*worker_command(db, "--module", "tests.cli.app"), env=env)
        await asyncio.to_thread(_wait_ready, second)
        outcome = await asyncio.wait_for(handle.result(), timeout=30)
        history = await handle.fetch_history()
        started_attempts = [int(e.attributes["attempt"]) for e in history.events if e.event_type == "ActivityTaskStarted"]
        lines = [line.split() for line in log.read_text().splitlines()]
        assert {int(line[3]) for line in lines} <= {first.pid, second.pid}
        return outcome, [[line[1], line[2], "first" if int(line[3]) == first.pid else "second"] for line in lines], started_attempts
    finally:
        await client.close()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def test_a_worker_killed_mid_run_leaves_the_run_for_another(tmp_path: Path) -> None:
    """Started from the library, half done by one worker process, SIGKILLed, finished by another."""
    db, log = tmp_path / "engine.db", tmp_path / "executions.log"
    outcome, runs, started_attempts = asyncio.run(_kill_and_recover(db, log))
    assert outcome == 1 + 4 + 9 + 16
    step_1 = [r for r in runs if r[0] == "1"]
    assert step_1 == [["1", "1", "first"]]  # its completion was recorded: it never ran again
    assert Counter((r[0], r[1]) for r in runs).most_common(1)[0][1] == 1  # each attempt ran once
    assert {r[0] for r in runs} == {"1", "2", "3", "4"}
    assert {r[2] for r in runs if r[0] in ("3", "4")} == {"second"}
    # History keeps the attempt that completed: the last one that ran for each step.
    assert started_attempts == [max(int(r[1]) for r in runs if r[0] == str(n)) for n in range(1, 5)]


def test_worker_mistakes_are_one_line_errors(dlab: Dlab, tmp_path: Path) -> None:
    db = str(tmp_path / "engine.db")
    for argv, expected in (
        (("--module", "no_such_module_here"), "Cannot import module 'no_such_module_here'"),
        (("--module", "tests.cli.app", "--workflow", "Nope"), "No workflow named 'Nope' in 'tests.cli.app' (it has: Again, Boom, Collector, Hello, Steps)"),
        (("--file", str(tmp_path / "missing.py")), "No Python file at"),
    ):
        result = dlab("worker", "--db", db, "-t", QUEUE, *argv)
        assert result.code == 1, argv
        assert result.err.startswith("Error: ") and result.err.count("\n") == 1 and expected in result.err, result.err
    broken = tmp_path / "broken.py"
    broken.write_text("from engine import workflow\n\nx = 1\nraise RuntimeError('half written')\n")
    result = dlab("worker", "--db", db, "-t", QUEUE, "--file", str(broken))
    assert result.code == 1 and f"{broken}:4: RuntimeError: half written" in result.err
    exits = tmp_path / "exits.py"
    exits.write_text("import sys\n\nx = 1\nsys.exit(2)  # as argparse does on arguments it does not know\n")
    result = dlab("worker", "--db", db, "-t", QUEUE, "--file", str(exits))
    assert result.code == 1 and f" raised SystemExit(2) at {exits}:4: a sys.exit() call" in result.err and result.err.count("\n") == 1
    empty = tmp_path / "empty.py"
    empty.write_text("VALUE = 1\n")
    result = dlab("worker", "--db", db, "-t", QUEUE, "--file", str(empty))
    assert result.code == 1 and "defines no @workflow.defn class and no @activity.defn function" in result.err
    assert dlab("worker", "--db", db, "--module", "tests.cli.app").code == 2  # --task-queue is required


def test_loader_finds_definitions_and_named_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    found = definitions("tests.cli.app", None)
    assert sorted(found.workflow_names()) == ["Again", "Boom", "Collector", "Hello", "Steps"]
    assert sorted(found.activity_names()) == ["greet", "step"]
    assert found.workflows[0].__module__ == "tests.cli.app"
    chosen = definitions("tests.cli.app", None, workflows=["Collector"], activities=["greet"])
    assert chosen.workflows == (app.Collector,) and chosen.activities == (app.greet,)
    with pytest.raises(CliError, match="No activity named 'nope'"):
        definitions("tests.cli.app", None, activities=["nope"])


def test_loader_keeps_one_copy_and_skips_inherited_definitions(tmp_path: Path) -> None:
    source = tmp_path / "extra_defs.py"
    source.write_text(
        "from engine import workflow\n"
        "from tests.cli.app import Hello, greet\n"
        "again = greet\n"
        "class NotAWorkflow(Hello):\n"
        "    pass\n"
    )
    found = definitions(None, str(source))
    assert found.workflows == (app.Hello,) and found.activities == (app.greet,)
    assert sys.modules[found.workflows[0].__module__] is sys.modules["tests.cli.app"]


def test_console_script_and_module_entry_point(template_db: Path) -> None:
    script = Path(sys.executable).with_name("dlab")
    if not script.exists():
        pytest.skip("the dlab console script is not installed in this environment: run `make setup`")
    shown = subprocess.run([str(script), "workflow", "list", "--db", str(template_db)], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "hello-1" in shown.stdout
    by_module = subprocess.run([sys.executable, "-m", "engine.cli", "workflow", "describe", "--db", str(template_db), "-w", "nope"], capture_output=True, text=True, timeout=60)
    assert by_module.returncode == 1 and by_module.stdout == "" and by_module.stderr.startswith("Error: No workflow with id 'nope'")


POISON = '''
import sys
from datetime import timedelta
from engine import RetryPolicy, activity, workflow


@activity.defn
def leave(code: int) -> str:
    if activity.info().attempt == 1:
        sys.exit(code)  # a library that calls sys.exit()
    return f"done on attempt {activity.info().attempt}"


@workflow.defn
class Poisoned:
    @workflow.run
    async def run(self, attempts: int) -> str:
        return await workflow.execute_activity(
            leave, 3, start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=10), maximum_attempts=attempts),
        )


@workflow.defn
class ExitsInWorkflowCode:
    @workflow.run
    async def run(self) -> str:
        raise SystemExit(4)
'''


async def _poisoned_runs(db: Path) -> tuple[str, BaseException, dict[str, object]]:
    client = await Client.connect(str(db))
    try:
        retried = await asyncio.wait_for(client.execute_workflow("Poisoned", 2, id="poisoned-1", task_queue=QUEUE), 20)
        failing = await client.start_workflow("Poisoned", 1, id="poisoned-2", task_queue=QUEUE)
        with pytest.raises(Exception) as info:
            await asyncio.wait_for(failing.result(), 20)
        exiting = await client.start_workflow("ExitsInWorkflowCode", id="exits-1", task_queue=QUEUE)
        for _ in range(1000):
            failed = [e for e in (await exiting.fetch_history()).events if e.event_type == "WorkflowTaskFailed"]
            if failed:
                break
            await asyncio.sleep(0.01)
        await exiting.terminate()
        return retried, info.value, failed[0].attributes["failure"]
    finally:
        await client.close()


def test_a_worker_process_survives_activities_and_workflows_that_exit(tmp_path: Path) -> None:
    """An activity calling sys.exit() fails its attempt (retried per its policy), workflow code
    raising SystemExit fails its workflow task: the process serves on and stops cleanly."""
    db, poison = tmp_path / "engine.db", tmp_path / "poison.py"
    poison.write_text(POISON)
    worker = _spawn(*worker_command(db, "--file", str(poison)))
    try:
        _wait_ready(worker)
        retried, error, task_failure = asyncio.run(_poisoned_runs(db))
        assert worker.poll() is None, worker.communicate()[1]
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=20)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, err
    assert retried == "done on attempt 2"
    cause = error.__cause__.__cause__  # WorkflowFailureError <- ActivityError <- the attempt's failure
    assert getattr(cause, "type", None) == "SystemExit" and str(cause) == "3"
    assert task_failure["applicationFailureInfo"] == {"type": "SystemExit", "nonRetryable": False}
    assert str(task_failure["message"]).startswith("Workflow code raised SystemExit(4) (a sys.exit() call")
    assert "activity leave raised SystemExit(3); recorded as the failure of this attempt, the worker goes on" in err
    assert out.strip().splitlines()[-1].startswith("dlab worker stopped: ")


def test_the_worker_serves_a_module_written_with_the_real_temporalio(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    pytest.importorskip("temporalio")
    from engine.cli._loader import definitions

    app = tmp_path / "temporal_app.py"
    app.write_text('''from datetime import timedelta
from temporalio import activity, workflow

@activity.defn(name="shout")
async def shout_loudly(word: str) -> str:
    return word.upper()

@workflow.defn(name="Shouting")
class Shout:
    @workflow.run
    async def run(self, word: str) -> str:
        return await workflow.execute_activity(shout_loudly, word, start_to_close_timeout=timedelta(seconds=2))
''')
    found = definitions(None, str(app))
    assert (found.workflow_names(), found.activity_names()) == (["Shouting"], ["shout"])
    only = definitions(None, str(app), workflows=["Shouting"], activities=["shout_loudly"])
    assert (only.workflow_names(), only.activity_names()) == (["Shouting"], ["shout"])
