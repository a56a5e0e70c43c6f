"""The extension in a real ipykernel, driven with jupyter_client as a notebook front end would.

Also measures (prints, does not assert) how long ``%load_ext`` and a cell that starts a
workflow take: run with ``pytest -s`` to see the figures.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

jupyter_client = pytest.importorskip("jupyter_client")

REPO = Path(__file__).resolve().parents[2]


class Cell:
    def __init__(self, reply: dict[str, Any], outputs: list[tuple[str, Any]], seconds: float) -> None:
        self.status = reply["content"]["status"]
        self.payload = reply["content"].get("payload", [])
        self.outputs = outputs
        self.seconds = seconds

    def stream(self, name: str) -> str:
        return "".join(text for kind, text in self.outputs if kind == name)

    @property
    def results(self) -> list[Any]:
        return [data.get("text/plain") for kind, data in self.outputs if kind == "execute_result"]


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Any]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    manager = jupyter_client.KernelManager(kernel_name="python3")
    manager.start_kernel(env=env, cwd=str(tmp_path))
    client = manager.client()
    client.start_channels()
    _managers[id(client)] = manager
    try:
        client.wait_for_ready(timeout=60)
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        _managers.pop(id(client), None)


_managers: dict[int, Any] = {}


def kernel_manager(client: Any) -> Any:
    """The manager of a client the ``kernel`` fixture made (to interrupt or kill its kernel)."""
    return _managers[id(client)]


def execute(client: Any, code: str, timeout: float = 30) -> Cell:
    started = time.perf_counter()
    msg_id = client.execute(code)
    outputs: list[tuple[str, Any]] = []
    while True:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "status" and content["execution_state"] == "idle":
            break
        if kind == "stream":
            outputs.append((content["name"], content["text"]))
        elif kind in ("execute_result", "display_data"):
            outputs.append((kind, content["data"]))
        elif kind == "error":
            outputs.append(("error", f"{content['ename']}: {content['evalue']}"))
            outputs.append(("traceback", "\n".join(content["traceback"])))
    reply = client.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = client.get_shell_msg(timeout=timeout)
    return Cell(reply, outputs, time.perf_counter() - started)


def test_hello_in_a_real_kernel(kernel: Any, tmp_path: Path) -> None:
    cells: list[Cell] = []

    def cell(code: str) -> Cell:
        result = execute(kernel, code)
        cells.append(result)
        assert result.status == "ok", (code, result.outputs)
        return result

    load = cell("%load_ext kernel_ext")
    assert load.stream("stdout").startswith("durable-lab: engine at .durable/engine.db (real time); magics")
    cell("%config DurableLab.db_path = 'lab.db'")
    cell(
        "%%activity\nfrom datetime import timedelta\nfrom engine import activity, workflow\n\n"
        "@activity.defn\nasync def greet(name: str) -> str:\n    return f'Hello, {name}!'\n"
    )
    cell(
        "%%workflow\n@workflow.defn\nclass Hello:\n    @workflow.run\n    async def run(self, name: str) -> str:\n"
        "        return await workflow.execute_activity(greet, name, start_to_close_timeout=timedelta(seconds=10))\n"
    )
    worker = cell("%worker start --task-queue q")
    assert worker.results == ["<worker 'w1' on task queue 'q': running>"]
    executed = cell("%workflow execute --type Hello --task-queue q --workflow-id w1 --input '\"x\"'")
    assert executed.results == ["'Hello, x!'"]
    started = cell("h = %workflow start --type Hello --task-queue q --workflow-id w2 --input '\"y\"'\nh")
    assert started.results[0].startswith("<run 'w2' of Hello")
    # The worker is a task on the kernel's loop: it finishes the run while the kernel is idle.
    deadline = time.monotonic() + 10
    while "Running" in (listing := cell("%workflow list")).results[0] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listing.results[0].splitlines()[1].split()[:2] == ["Completed", "w2"]
    assert cell("await h").results == ["'Hello, y!'"]
    help_cell = cell("%workflow?")
    assert any("usage: %workflow execute" in p.get("data", {}).get("text/plain", "") for p in help_cell.payload)
    assert (tmp_path / "lab.db").is_file()

    for result in cells:
        assert result.stream("stderr") == "", result.outputs

    misuse = execute(kernel, "%workflow start --type Hello")
    assert "UsageError: the following arguments are required: --task-queue/-t" in misuse.stream("stderr")
    assert not [o for o in misuse.outputs if o[0] == "error"]  # no traceback

    cell("%unload_ext kernel_ext")
    gone = execute(kernel, "%worker list")
    assert "Line magic function `%worker` not found" in gone.stream("stderr")

    # Figures for the report (measured, not asserted): run `pytest -s` to see them.
    print(f"\n[kernel_ext timing] %load_ext: {load.seconds * 1000:.0f} ms; "
          f"%worker start: {worker.seconds * 1000:.0f} ms; "
          f"cell starting a workflow: {started.seconds * 1000:.0f} ms; "
          f"%workflow execute (start + wait): {executed.seconds * 1000:.0f} ms")


def test_magics_in_the_cell_that_loads_the_extension(kernel: Any) -> None:
    # Jupyter transformed the cell before the extension existed; a cell that runs as a
    # coroutine (it awaits something) gets its magics awaited all the same.
    cell = execute(kernel, "%load_ext kernel_ext\n%config DurableLab.db_path = ':memory:'\nimport asyncio\nawait asyncio.sleep(0)\n%engine")
    assert cell.status == "ok" and "durable-lab engine" in cell.results[0], cell.outputs
    execute(kernel, "%unload_ext kernel_ext")
    # A cell the kernel runs synchronously cannot wait inside its own event loop. With
    # kernel_ext._early (make setup adds it to .venv's kernels) the kernel runs it as a
    # coroutine, so it just works, %reload_ext too.
    execute(kernel, "%load_ext kernel_ext._early")
    for load in ("%load_ext", "%reload_ext"):
        cell = execute(kernel, f"{load} kernel_ext\n%config DurableLab.db_path = ':memory:'\n%engine")
        assert cell.status == "ok" and "durable-lab engine" in cell.results[0], cell.outputs
        assert cell.stream("stderr") == "", cell.outputs
        execute(kernel, "%unload_ext kernel_ext")
    # Without it, one line says what to do, and doing it works.
    execute(kernel, "%unload_ext kernel_ext._early")
    cell = execute(kernel, "%load_ext kernel_ext\n%engine")
    assert "UsageError: This magic is in the cell that loaded kernel_ext" in cell.stream("stderr") and "Run the cell again" in cell.stream("stderr")
    assert not cell.results and not [o for o in cell.outputs if o[0] == "error"]
    again = execute(kernel, "%load_ext kernel_ext\n%engine")
    assert "durable-lab engine" in again.results[0], again.outputs


def test_execute_shows_a_failing_task_and_an_interrupt_is_one_line(kernel: Any, tmp_path: Path) -> None:
    for code in (
        "%load_ext kernel_ext",
        "%config DurableLab.db_path = ':memory:'",
        "import time\nfrom engine import workflow",
        "%%workflow\n@workflow.defn\nclass Clock:\n    @workflow.run\n    async def run(self) -> float:\n        return time.time()\n",
        "%%workflow\n@workflow.defn\nclass Waits:\n    @workflow.run\n    async def run(self) -> str:\n        await workflow.wait_condition(lambda: False)\n        return 'never'\n",
        "%worker start -t q",
    ):
        assert execute(kernel, code).status == "ok", code
    # The failing task shows at once, with the cell's line, instead of a silent [*].
    started = time.monotonic()
    failed = execute(kernel, "%workflow execute --type Clock -t q -w clock")
    assert failed.status == "error" and time.monotonic() - started < 10
    error = next(text for kind, text in failed.outputs if kind == "traceback")
    assert "WorkflowTaskFailed: the workflow task of 'clock' (Clock) failed" in error
    assert "Cell In[4], line 5, in run" in error and "return time.time()" in error and "ipykernel_" not in error
    # An interrupt while waiting: one line, the run goes on.
    msg_id = kernel.execute("%workflow execute --type Waits -t q -w waits")
    time.sleep(1.0)
    kernel_manager(kernel).interrupt_kernel()
    outputs = []
    while True:
        msg = kernel.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
        if msg["msg_type"] == "error":
            outputs.append(msg["content"]["traceback"])
    assert outputs == [["Interrupted: Stopped waiting for workflow 'waits'; the run goes on (%workflow describe -w waits, "
                        "or wait again: %workflow result -w waits)."]]
    assert execute(kernel, "d = %workflow describe -w waits\nd.status.name").results == ["'RUNNING'"]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, only not reaped
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to see the worker process")
def test_a_process_worker_dies_with_its_kernel(kernel: Any, tmp_path: Path) -> None:
    for code in (
        "%load_ext kernel_ext",
        "%%activity\nfrom engine import activity\n\n@activity.defn\nasync def greet(name: str) -> str:\n    return f'Hello, {name}!'\n",
        "p = %worker start --process -t q",
    ):
        assert execute(kernel, code).status == "ok", code
    worker_pid = int(execute(kernel, "p.pid").results[0])
    kernel_pid = int(execute(kernel, "import os; os.getpid()").results[0])
    assert _alive(worker_pid)
    os.kill(kernel_pid, signal.SIGKILL)  # what a crashed kernel is: no cleanup runs
    deadline = time.monotonic() + 5
    while _alive(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker_pid), "the worker process outlived its kernel"
    log = (tmp_path / ".durable" / "worker-p1.log").read_text()
    assert "Stopping (SIGTERM)" in log and "dlab worker stopped" in log  # a graceful stop
    assert not list((tmp_path / ".durable" / "engine.db-workers").glob("*.json"))  # no longer listed


def test_a_kernel_configured_by_make_setup_runs_the_loading_cell(tmp_path: Path) -> None:
    # The line `python -m kernel_ext._early --install` writes, read by a real kernel from its
    # config (here a profile's, since this test must not touch the environment's).
    from kernel_ext import _early

    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / _early.CONFIG_NAME).write_text(_early.CONFIG_LINE + "\n")
    env = dict(os.environ, IPYTHONDIR=str(tmp_path / "ipython"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    manager = jupyter_client.KernelManager(kernel_name="python3")
    manager.start_kernel(env=env, cwd=str(tmp_path))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        cell = execute(client, "%load_ext kernel_ext\n%config DurableLab.db_path = ':memory:'\n%engine")
        assert cell.status == "ok" and "durable-lab engine" in cell.results[0], cell.outputs
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
