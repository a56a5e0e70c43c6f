"""Worker processes from a notebook: ``%worker start --process``, ``%worker kill``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from IPython.core.interactiveshell import InteractiveShell

from tests.kernel_ext.test_magics import run, shell, usage_error  # noqa: F401 - the fixture

CELLS = [
    '''%%activity
import asyncio, os
from datetime import timedelta
from engine import activity, workflow

@activity.defn
async def step(n: int) -> str:
    await asyncio.sleep(0.3)
    return f"step {n} in pid {os.getpid()}"
''',
    '''%%workflow
@workflow.defn
class Steps:
    @workflow.run
    async def run(self, count: int) -> list:
        return [await workflow.execute_activity(step, n, start_to_close_timeout=timedelta(seconds=2)) for n in range(count)]
''',
]


def test_a_run_started_in_the_kernel_finishes_in_a_process_and_after_a_kill_in_the_kernel(shell: InteractiveShell, tmp_path: Path) -> None:
    for cell in CELLS:
        run(shell, cell)
    worker = run(shell, "%worker start --process --task-queue q")
    assert worker.state == "running" and worker.name == "p1"
    assert (tmp_path / ".durable" / "notebook_definitions.py").is_file()
    result = run(shell, "%workflow execute --type Steps -t q -w in-process -i 2")
    assert all(f"in pid {worker.pid}" in line for line in result)  # ran in the process, not here

    run(shell, "h = %workflow start --type Steps -t q -w killed -i 4")
    for _ in range(200):  # until the process has done a step
        if run(shell, "%workflow describe -w killed").history_length >= 9:
            break
        run(shell, "import asyncio; await asyncio.sleep(0.05)")
    killed = run(shell, "%worker kill p1")
    assert killed.state == "killed (SIGKILL)"
    # The kill is logged against what the process held, so the graph can show where it hit.
    log = run(shell, "%fault log -w killed")
    assert [r[1] for r in log.rows] == ["kill"] and f"worker p1 (pid {worker.pid}) killed while running attempt 1 of step" in log.rows[0][4]
    kernel_worker = run(shell, "%worker start -t q")  # a kernel worker takes over once the leases time out
    assert kernel_worker.name == "w1"  # kernel workers and processes are numbered apart
    result = run(shell, "await h")
    assert len(result) == 4 and f"in pid {worker.pid}" in result[0]
    graph = run(shell, "%workflow show -w killed -o graph")
    killed_rows = [r for r in graph.rows if r.get("injected")]
    assert len(killed_rows) == 1 and "⚡ worker killed here (SIGKILL)" in killed_rows[0]["detail"]
    assert any(f"in pid {worker.pid}" not in line for line in result)  # the rest ran in the kernel
    run(shell, "%worker list")


def test_a_run_started_from_the_command_line_finishes_in_the_kernel(shell: InteractiveShell, tmp_path: Path) -> None:
    for cell in CELLS:
        run(shell, cell)
    run(shell, "%engine")  # opens the database file
    db = tmp_path / ".durable" / "engine.db"
    started = subprocess.run(
        [sys.executable, "-m", "engine.cli", "workflow", "start", "--db", str(db), "--type", "Steps", "-t", "q", "-w", "from-cli", "-i", "1"],
        capture_output=True, text=True, timeout=60,
    )
    assert started.returncode == 0, started.stderr
    run(shell, "%worker start -t q")
    for _ in range(200):
        if run(shell, "%workflow describe -w from-cli").status.name == "COMPLETED":
            break
        run(shell, "import asyncio; await asyncio.sleep(0.05)")
    events = run(shell, "%workflow show -w from-cli -o json").data["events"]
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"


def test_process_worker_misuse(shell: InteractiveShell) -> None:
    assert "No %%workflow or %%activity cell has run yet" in usage_error(shell, "%worker start --process -t q")
    for cell in CELLS:
        run(shell, cell)
    run(shell, "%engine --time skip")
    assert "real clock" in usage_error(shell, "%worker start --process -t q")
    assert "No worker named 'nope'" in usage_error(shell, "%worker kill nope")


def test_reloading_the_extension_resumes_unfinished_runs(shell: InteractiveShell) -> None:
    for cell in CELLS:
        run(shell, cell)
    run(shell, "%worker start -t q")
    run(shell, "%workflow start --type Steps -t q -w resumed -i 3")
    for _ in range(200):
        if run(shell, "%workflow describe -w resumed").history_length >= 5:
            break
        run(shell, "import asyncio; await asyncio.sleep(0.05)")
    # What a kernel restart does to the engine: workers gone, database file left as it was.
    run(shell, "%unload_ext kernel_ext")
    run(shell, "%load_ext kernel_ext")
    for cell in CELLS:
        run(shell, cell)
    assert run(shell, "%workflow describe -w resumed").status.name == "RUNNING"
    run(shell, "%worker start -t q")
    for _ in range(400):
        if run(shell, "%workflow describe -w resumed").status.name == "COMPLETED":
            break
        run(shell, "import asyncio; await asyncio.sleep(0.05)")
    assert run(shell, "%workflow describe -w resumed").status.name == "COMPLETED"


def test_killing_a_kernel_worker_is_logged_where_it_hit(shell: InteractiveShell) -> None:
    for cell in CELLS:
        run(shell, cell)
    run(shell, "%worker start -t q")
    run(shell, "%workflow start --type Steps -t q -w kernel-killed -i 2")
    for _ in range(200):  # until the first step's activity runs
        if run(shell, "%workflow describe -w kernel-killed").pending_activities:
            break
        run(shell, "import asyncio; await asyncio.sleep(0.02)")
    run(shell, "await asyncio.sleep(0.05)")  # the 0.3 s step is surely running by now
    killed = run(shell, "%worker kill w1")
    assert killed.state == "stopped"
    log = run(shell, "%fault log -w kernel-killed")
    assert [r[1] for r in log.rows] == ["kill"] and "worker w1 killed while running attempt 1 of step" in log.rows[0][4]


def test_worker_list_shows_the_workers_this_kernel_did_not_start(shell: InteractiveShell, tmp_path: Path, capsys: Any) -> None:
    for cell in CELLS:
        run(shell, cell)
    run(shell, "%worker start -t q")
    run(shell, "%worker start --process -t q")
    capsys.readouterr()
    run(shell, "%worker list")
    assert "Other workers" not in capsys.readouterr().out  # its own process worker is not "other"
    db = tmp_path / ".durable" / "engine.db"
    code = tmp_path / "foreign.py"
    code.write_text(CELLS[0].split("\n", 1)[1], encoding="utf-8")
    foreign = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "worker", "--db", str(db), "-t", "elsewhere", "--file", str(code)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert foreign.stdout is not None and "dlab worker ready" in foreign.stdout.readline()
        run(shell, "%worker list")
        out = capsys.readouterr().out
        assert out.startswith("Workers of this kernel:\nName")
        mine, others = out.split("\n\nOther workers on this database, not started by this kernel:\n")
        assert "w1" in mine and "p1" in mine
        header, row = others.strip().splitlines()
        assert header.split() == ["Identity", "TaskQueue", "Where", "Since", "Started", "as"]
        assert row.startswith(f"{foreign.pid}@") and "elsewhere" in row and f"pid {foreign.pid} on " in row
        assert "python -m engine.cli worker --db" in row
    finally:
        foreign.kill()
        foreign.wait()
    run(shell, "%worker list")
    assert "Other workers" not in capsys.readouterr().out  # a dead worker's entry goes with it


def test_a_process_worker_loads_cells_written_with_temporalio_imports(tmp_path: Path) -> None:
    # The cells ran with temporalio mapped onto the engine; the worker process must load them so too.
    from kernel_ext._process_workers import write_code

    code = write_code(tmp_path, ['''from datetime import timedelta
from temporalio import activity, workflow

@activity.defn
async def shout(word: str) -> str:
    return word.upper()

@workflow.defn
class Shout:
    @workflow.run
    async def run(self, word: str) -> str:
        return await workflow.execute_activity(shout, word, start_to_close_timeout=timedelta(seconds=2))
'''])
    probe = f"from engine.cli._loader import definitions; d = definitions(None, {str(code)!r}); print(d.workflow_names(), d.activity_names())"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "['Shout'] ['shout']", done.stderr
