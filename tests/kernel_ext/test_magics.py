"""Every magic through a real IPython shell, plus the input transformer that awaits them.

A plain ``InteractiveShell`` has no always-running loop: cells with a top-level ``await`` (what
the transformer makes of our magics) run on IPython's own persistent loop, so workers run
while a cell awaits and pause in between. ``test_kernel.py`` covers the real kernel.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from IPython.core.async_helpers import get_asyncio_loop
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from kernel_ext._transform import await_magics
from kernel_ext.magics import DurableLab, DurableMagics, Pending

ACTIVITY_CELL = '''%%activity
from datetime import timedelta
from engine import activity, workflow

@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}!"
'''

WORKFLOW_CELL = '''%%workflow
@workflow.defn
class Hello:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(greet, name, start_to_close_timeout=timedelta(seconds=10))

@workflow.defn
class Nap:
    @workflow.run
    async def run(self, seconds: float) -> str:
        await workflow.sleep(seconds)
        return "{word}"
'''


def loaded_shell(before: tuple[str, ...] = (), after: tuple[str, ...] = ()) -> Iterator[InteractiveShell]:
    """The shell with the extension loaded: ``before``/``after`` are cells run before and
    after ``%load_ext`` (configuration). For a fixture: ``yield from loaded_shell(...)``,
    in a test's own temporary folder."""
    ip = InteractiveShell.instance()
    ip.colors = "nocolor"
    ip.config.pop("DurableLab", None)
    for cell in before:
        ip.run_cell(cell)
    ip.run_cell("%load_ext kernel_ext")
    for cell in after:
        ip.run_cell(cell)
    yield ip
    ip.run_cell("%unload_ext kernel_ext")
    ip.config.pop("DurableLab", None)


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)
    yield from loaded_shell()


def run(shell: InteractiveShell, code: str) -> Any:
    result = shell.run_cell(code, store_history=True)
    error = result.error_before_exec or result.error_in_exec
    if error is not None:
        raise AssertionError(f"cell failed: {type(error).__name__}: {error}")
    return result.result


def usage_error(shell: InteractiveShell, code: str) -> str:
    result = shell.run_cell(code)
    error = result.error_in_exec
    assert type(error) is UsageError, f"expected UsageError itself, got {error!r}"  # a subclass shows a traceback
    return str(error)


def define(shell: InteractiveShell, word: str = "rested") -> None:
    run(shell, ACTIVITY_CELL)
    run(shell, WORKFLOW_CELL.replace("{word}", word))


def test_load_prints_one_line_and_registers_everything(capsys: pytest.CaptureFixture[str], shell: InteractiveShell) -> None:
    out = capsys.readouterr().out
    assert out == "durable-lab: engine at .durable/engine.db (real time); magics %worker %workflow %engine %fault %explore %replay %check %loadtest %temporal %%workflow %%activity\n"
    magics = shell.magics_manager.magics
    # The line names exactly the magics the extension registers, so a new magic cannot be left out.
    ours = {
        kind: {name for name, fn in magics[kind].items() if getattr(fn, "__module__", "").startswith("kernel_ext")}
        for kind in ("line", "cell")
    }
    listed = out.split("magics ", 1)[1].split()
    assert sorted(listed) == sorted([f"%{n}" for n in ours["line"]] + [f"%%{n}" for n in ours["cell"]])
    assert await_magics in shell.input_transformers_post
    assert any(isinstance(c, DurableLab) for c in shell.configurables)


def test_hello_end_to_end(capsys: pytest.CaptureFixture[str], shell: InteractiveShell, tmp_path: Path) -> None:
    define(shell)
    out = capsys.readouterr().out
    assert "durable-lab: activity greet registered" in out
    assert "durable-lab: workflow Hello registered; workflow Nap registered" in out
    worker = run(shell, "%worker start --task-queue q")
    assert repr(worker) == "<worker 'w1' on task queue 'q': running>"
    assert run(shell, "%workflow execute --type Hello --task-queue q --workflow-id w1 --input '\"x\"'") == "Hello, x!"
    assert (tmp_path / ".durable" / "engine.db").is_file()  # the default database, beside the notebook
    handle = run(shell, "h = %workflow start --type Hello -t q -w w2 -i '\"y\"'\nh")
    assert repr(handle).startswith("<run 'w2' of Hello on task queue 'q', run id ")
    assert run(shell, "await h") == "Hello, y!"
    capsys.readouterr()
    run(shell, "%worker list")
    assert capsys.readouterr().out.splitlines()[1].split()[:3] == ["w1", "q", "running"]
    runs = run(shell, "%workflow list")
    assert [r.id for r in runs] == ["w2", "w1"]
    assert [r.id for r in run(shell, "%workflow list --query \"WorkflowId='w1'\" --limit 5")] == ["w1"]
    assert run(shell, "%workflow describe --workflow-id w1").status.name == "COMPLETED"
    table = run(shell, "%workflow show --workflow-id w1 --detailed")
    assert "WorkflowExecutionCompleted" in table._repr_mimebundle_(include=["text/plain"])["text/plain"]
    assert run(shell, "%workflow show -w w1 --output json").data["events"][-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    view = run(shell, "%workflow show -w w1 -r " + runs.runs[1].run_id + " -o graph")
    assert hasattr(view, "_repr_mimebundle_")
    status = run(shell, "%engine")
    assert "runs        Completed 2" in status.text() and "w1 (task queue 'q', running)" in status.text()
    stopped = run(shell, "%worker stop w1")
    assert stopped.state == "stopped"


def test_inputs_are_json_values_repeated_per_argument(shell: InteractiveShell) -> None:
    run(shell, '''%%workflow
from engine import workflow
@workflow.defn
class Pair:
    @workflow.run
    async def run(self, a: dict, b: list) -> list:
        return [a["k"], b[1]]
''')
    run(shell, "%worker start --task-queue q --name pairs")
    assert run(shell, "%workflow execute --type Pair -t q -i '{\"k\": \"v\"}' --input \"[1, 2]\"") == ["v", 2]


def test_cancel_and_terminate_print_what_happened(capsys: pytest.CaptureFixture[str], shell: InteractiveShell) -> None:
    define(shell)
    run(shell, "%worker start -t q")
    run(shell, "a = %workflow start --type Nap -t q -w a -i 3600\nb = %workflow start --type Nap -t q -w b -i 3600")
    for _ in range(100):  # let the worker reach the timers (the loop runs only while a cell awaits)
        if run(shell, "%workflow describe -w a").pending_timers and run(shell, "%workflow describe -w b").pending_timers:
            break
        run(shell, "import asyncio; await asyncio.sleep(0.02)")
    capsys.readouterr()
    run(shell, "%workflow cancel -w a --reason enough")
    run(shell, "%workflow terminate -w b --reason 'two words'")
    out = capsys.readouterr().out
    assert "Cancellation requested for workflow 'a'" in out and "Workflow 'b' (run " in out and "terminated." in out
    assert run(shell, "from engine.errors import WorkflowFailureError\ntry:\n    await a\nexcept WorkflowFailureError as e:\n    r = type(e.cause).__name__\nr") == "CancelledError"
    assert run(shell, "%workflow describe -w b").status.name == "TERMINATED"
    assert "already TERMINATED; nothing to terminate" in usage_error(shell, "%workflow terminate -w b")


def test_time_skipping_from_config(shell: InteractiveShell) -> None:
    run(shell, "%config DurableLab.time_mode = 'skip'")
    define(shell)
    run(shell, "%worker start -t q")
    started = time.monotonic()
    assert run(shell, "%workflow execute --type Nap -t q -i 86400") == "rested"
    assert time.monotonic() - started < 5
    assert "time skipping" in run(shell, "%engine").text()
    assert run(shell, "%engine --time real").time_mode == "real"


def test_config_db_path_and_reset(shell: InteractiveShell, tmp_path: Path) -> None:
    run(shell, "%config DurableLab.db_path = 'lab.db'")
    define(shell)
    run(shell, "%worker start -t q")
    run(shell, "%workflow execute --type Hello -t q -i '\"a\"'")
    assert (tmp_path / "lab.db").is_file() and not (tmp_path / ".durable").exists()
    status = run(shell, "%engine --reset")
    assert status.runs == {} and status.workers == (("w1", "q", "running"),)


def test_a_damaged_database_is_one_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    monkeypatch.chdir(tmp_path)
    with sqlite3.connect("damaged.db") as conn:
        conn.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                           "INSERT INTO meta VALUES ('app', 'durable-lab'), ('schema_version', 'seven');")
    conn.close()
    ip = InteractiveShell.instance()
    ip.config.pop("DurableLab", None)
    try:
        ip.run_cell("%config DurableLab.db_path = 'damaged.db'")
        ip.run_cell("%load_ext kernel_ext")  # the database opens at the first magic that needs it
        message = usage_error(ip, "%workflow list")
    finally:
        ip.run_cell("%unload_ext kernel_ext")
        ip.config.pop("DurableLab", None)
    assert "schema version 'seven' is not a number" in message and "DurableLab.db_path" in message


def test_rerunning_a_workflow_cell_replaces_the_definition(capsys: pytest.CaptureFixture[str], shell: InteractiveShell) -> None:
    define(shell, "v1")
    run(shell, "%worker start -t q")
    run(shell, "h = %workflow start --type Nap -t q -w nap -i 0.5")
    for _ in range(100):
        if run(shell, "%workflow describe -w nap").pending_timers:
            break
        run(shell, "import asyncio; await asyncio.sleep(0.02)")
    capsys.readouterr()
    run(shell, WORKFLOW_CELL.replace("{word}", "v2"))
    out = capsys.readouterr().out
    assert "workflow Hello replaced; workflow Nap replaced (workers updated: w1; 1 cached run(s) will replay with the new code)" in out
    assert run(shell, "await h") == "v2"


def test_rerunning_a_cell_that_imports_a_definition_keeps_it(capsys: pytest.CaptureFixture[str], shell: InteractiveShell) -> None:
    define(shell)
    run(shell, "import sys, types\nsys.modules['lab_defs'] = types.SimpleNamespace(Hello=Hello, greet=greet)")
    capsys.readouterr()
    run(shell, "%%workflow\nfrom lab_defs import Hello")
    run(shell, "%%activity\nimport lab_defs\ngreet = lab_defs.greet")
    assert capsys.readouterr().out == "durable-lab: workflow Hello unchanged\ndurable-lab: activity greet unchanged\n"


def test_a_failing_definitions_cell_registers_nothing(shell: InteractiveShell) -> None:
    result = shell.run_cell("%%activity\nfrom engine import activity\n@activity.defn\nasync def half(x: int) -> float:\n    return x / 2\n1 / 0")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    magics = next(m for m in shell.magics_manager.registry.values() if isinstance(m, DurableMagics))
    assert magics.session.activities == {}


def test_a_definitions_cell_keeps_its_source_for_tracebacks_and_inspect(shell: InteractiveShell) -> None:
    define(shell)
    source = run(shell, "import inspect\ninspect.getsource(Hello.run)")
    assert "execute_activity(greet, name" in source


def test_help_lists_every_verb(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    line = shell.magics_manager.magics["line"]
    workflow_doc = line["workflow"].__doc__
    for verb in ("start", "execute", "show", "list", "describe", "signal", "query", "cancel", "terminate"):
        assert f"usage: %workflow {verb}" in workflow_doc
    assert "%%workflow" in workflow_doc and "--input JSON" in workflow_doc
    for verb in ("start", "stop", "list"):
        assert f"usage: %worker {verb}" in line["worker"].__doc__
    assert "--time {real,skip}" in line["engine"].__doc__ and "--reset" in line["engine"].__doc__
    assert "%%activity" in shell.magics_manager.magics["cell"]["activity"].__doc__
    run(shell, "%workflow?")
    assert "usage: %workflow terminate" in capsys.readouterr().out


@pytest.mark.parametrize(
    "code, expected",
    [
        ("%workflow", "%workflow needs a verb: start, execute, show"),
        ("%workflow begin", "Unknown verb 'begin' for %workflow"),
        ("%worker", "%worker needs a verb: start, stop, kill, list"),
        ("%worker run", "Unknown verb 'run' for %worker"),
        ("%worker start", "the following arguments are required: --task-queue/-t\nusage: %worker start"),
        ("%worker start -t q --colour red", "unrecognized arguments: --colour red\nusage: %worker start"),
        ("%worker stop", "required: N\nusage: %worker stop N"),
        ("%worker stop ghost", "No worker named 'ghost' (running: none). See %worker list.\nusage: %worker stop N"),
        ("%workflow start --type Hello", "required: --task-queue/-t\nusage: %workflow start"),
        ("%workflow start -t q", "required: --type\nusage: %workflow start"),
        ("%workflow start --type Hello -t q --input Ada", "--input 'Ada' is not valid JSON"),
        ("%workflow start --type Hello -t q --input '{\"a\": }'", "--input '{\"a\": }' is not valid JSON"),
        ("%workflow start --type Hello -t q --input 'Ada", "cannot split the arguments: No closing quotation"),
        ("%workflow start --type Hello -t q --input NaN", "--input 'NaN' is not standard JSON"),
        ("%workflow start --type Hello -t q --input -Infinity", "--input '-Infinity' is not standard JSON"),
        ("%workflow start --type Hello -t q -i '[Infinity]'", "--input '[Infinity]' is not standard JSON"),
        ("%workflow list --query '" + "(" * 300 + "WorkflowId = \"a\"" + ")" * 300 + "'", "nests brackets more than 50 deep"),
        ("%workflow start --type Hello -t q --run-timeout soon", "--run-timeout 'soon' is not a duration"),
        ("%workflow start --type Helo -t q", "Unknown workflow type 'Helo' (this kernel defines: Hello, Nap)"),
        ("%workflow execute --type Hello -t nobody", "No worker of this kernel polls task queue 'nobody'"),
        ("%workflow show", "needs --workflow-id ID (a run here) or --file PATH (a history file).\nusage: %workflow show"),
        ("%workflow show -w ghost", "No workflow with id 'ghost'"),
        ("%workflow show -w ghost -o svg", "argument --output/-o: invalid choice: 'svg'"),
        ("%workflow describe -w ghost", "No workflow with id 'ghost'"),
        ("%workflow cancel -w ghost", "No workflow with id 'ghost'"),
        ("%workflow terminate -w ghost", "No workflow with id 'ghost'"),
        ("%workflow list --query 'StartTime > 1'", "Expected a quoted value for StartTime at '1'"),
        ("%workflow list --limit many", "argument --limit: invalid int value: 'many'"),
        ("%workflow signal -w ghost --name go", "No workflow with id 'ghost'"),
        ("%workflow query -w ghost --type state", "No workflow with id 'ghost'"),
        ("%engine --time fast", "argument --time: invalid choice: 'fast'"),
        ("%engine now", "unrecognized arguments: now\nusage: %engine"),
        ("%%workflow now\nx = 1", "%%workflow takes only --module NAME, got 'now'."),
        ("%%workflow\nx = 1", "This %%workflow cell defined no @workflow.defn class"),
        ("%%activity\ny = 2", "This %%activity cell defined no @activity.defn function"),
    ],
)
def test_misuse_raises_usage_error(shell: InteractiveShell, code: str, expected: str) -> None:
    define(shell)
    assert expected in usage_error(shell, code)


def test_a_workflow_id_in_use_is_a_usage_error(shell: InteractiveShell) -> None:
    define(shell)
    run(shell, "%workflow start --type Nap -t nobody -w dup -i 60")
    message = usage_error(shell, "%workflow start --type Nap -t nobody -w dup -i 60")
    assert "dup" in message and "usage: %workflow start" in message


def test_a_query_the_workflow_has_no_handler_for_is_one_usage_error(shell: InteractiveShell) -> None:
    define(shell)
    run(shell, "%worker start -t q")
    run(shell, "%workflow execute --type Hello -t q -w asked -i '\"a\"'")
    message = usage_error(shell, "%workflow query -w asked --name progress")
    assert message.startswith("Query handler for 'progress' expected but not found, known queries: []. Workflow Hello has no query 'progress'")
    assert "usage: %workflow query" in message


def test_without_the_transformer_a_magic_returns_an_awaitable(shell: InteractiveShell) -> None:
    define(shell)
    pending = shell.run_line_magic("workflow", "list")  # e.g. called from a function
    assert isinstance(pending, Pending) and "await it" in repr(pending)
    assert len(get_asyncio_loop().run_until_complete(_await(pending))) == 0
    assert run(shell, "async def runs():\n    return await get_ipython().run_line_magic('workflow', 'list')\nlen(await runs())") == 0


async def _await(awaitable: Any) -> Any:
    return await awaitable


def test_unload_and_reload_clean_up(shell: InteractiveShell) -> None:
    run(shell, "%config DurableLab.db_path = ':memory:'")
    define(shell)
    worker = run(shell, "%worker start -t q")
    run(shell, "%reload_ext kernel_ext")
    assert worker.state == "stopped"  # the old engine closed; the plain shell's loop was idle
    magics = [m for m in shell.magics_manager.registry.values() if isinstance(m, DurableMagics)]
    assert len(magics) == 1 and magics[0].session.db_path == ":memory:"  # %config survives a reload
    assert sum(isinstance(c, DurableLab) for c in shell.configurables) == 1
    assert shell.input_transformers_post.count(await_magics) == 1
    run(shell, "%unload_ext kernel_ext")
    assert "worker" not in shell.magics_manager.magics["line"] and "activity" not in shell.magics_manager.magics["cell"]
    assert await_magics not in shell.input_transformers_post
    assert not any(isinstance(c, DurableLab) for c in shell.configurables)
    assert "Line magic function `%worker` not found" in usage_error(shell, "%worker list")
    run(shell, "%load_ext kernel_ext")  # the fixture unloads again


# ---------------------------------------------------------------------- the input transformer
def _t(code: str) -> str:
    return "".join(await_magics(code.splitlines(keepends=True)))


def test_transformer_awaits_our_magics_at_top_level() -> None:
    call = "get_ipython().run_line_magic('workflow', 'list')"
    assert _t(call + "\n") == f"await {call}\n"
    assert _t(f"runs = {call}\n") == f"runs = await {call}\n"
    assert _t(f"for i in range(2):\n    {call}\n") == f"for i in range(2):\n    await {call}\n"
    assert _t(f"ü = {call}\n") == f"ü = await {call}\n"  # column offsets count UTF-8 bytes
    assert _t(f"async def f():\n    return {call}\n") == f"async def f():\n    return await {call}\n"
    cell = "get_ipython().run_cell_magic('activity', '', 'x = 1\\n')\n"
    assert _t(cell) == "await " + cell
    two = f"{call}\nget_ipython().run_line_magic('engine', '')\n"
    assert _t(two) == f"await {call}\nawait get_ipython().run_line_magic('engine', '')\n"


def test_transformer_leaves_everything_else_alone() -> None:
    for code in [
        "get_ipython().run_line_magic('time', 'x = 1')\n",  # not ours
        "get_ipython().run_cell_magic('engine', '', '')\n",  # %%engine is not a cell magic of ours
        "def f():\n    get_ipython().run_line_magic('workflow', 'list')\n",  # await would be a SyntaxError
        "class A:\n    r = get_ipython().run_line_magic('workflow', 'list')\n",
        "xs = [get_ipython().run_line_magic('workflow', 'list') for _ in 'ab']\n",
        "await get_ipython().run_line_magic('workflow', 'list')\n",  # already awaited
        "other().run_line_magic('workflow', 'list')\n",
        "get_ipython().run_line_magic('workflow', 'list'\n",  # does not parse: IPython reports it
        "print('run_line_magic(')\n",
    ]:
        assert _t(code) == code


def test_transformer_is_active_in_the_shell(shell: InteractiveShell) -> None:
    assert "await get_ipython().run_line_magic('workflow'" in shell.transform_cell("h = %workflow start --type A -t q\n")
    assert shell.transform_cell("%workflow?\n") == "get_ipython().run_line_magic('pinfo', '%workflow')\n"


def test_describe_shows_search_attributes_and_memo(shell: InteractiveShell) -> None:
    run(shell, '''%%workflow
from engine import workflow
from engine.common import SearchAttributeKey

@workflow.defn
class Tagging:
    @workflow.run
    async def run(self) -> str:
        workflow.upsert_search_attributes([SearchAttributeKey.for_int("CustomIntField").value_set(7)])
        workflow.upsert_memo({"note": "hi"})
        return "ok"
''')
    run(shell, "%worker start --task-queue q")
    assert run(shell, "%workflow execute --type Tagging --task-queue q --workflow-id tagged") == "ok"
    text = run(shell, "%workflow describe -w tagged").text()
    assert "SearchAttributes:\n  CustomIntField   7\nMemo:\n  note             \"hi\"" in text
    assert [r.id for r in run(shell, "%workflow list --query \"CustomIntField > 6\"")] == ["tagged"]
