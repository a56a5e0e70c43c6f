"""The workflow sandbox: restrictions, isolation per run, escape hatches, temporalio imports.

Workflows come from module files that the sandbox loads afresh for every run:
``tests/engine/sandbox_workflows.py`` and small modules each test writes into ``tmp_path``.
A restricted call fails the workflow *task* (the run waits for fixed code, as after a bug);
the table-driven tests observe it through the offline ``Replayer``, which runs the first
workflow task of a synthetic history in a fresh sandboxed instance, as a worker would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from engine import Worker, workflow
from engine._conversion.payload_converter import from_json_payload, to_json_payloads
from engine.converter import DataConverter
from engine.errors import DefinitionError, RestrictedWorkflowAccessError, WorkflowFailureError
from engine.history import History, HistoryEvent
from engine.replay import Replayer
from engine.testing import WorkflowEnvironment
from engine.worker.workflow_sandbox import (
    TEMPORALIO_NAMES,
    SandboxedWorkflowRunner,
    SandboxRestrictions,
    UnsandboxedWorkflowRunner,
)
from tests.engine import sandbox_workflows as wf

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
CONVERTER = DataConverter.default.payload_converter


def to_payloads(values: list[Any]) -> dict[str, Any]:
    return to_json_payloads(CONVERTER, values, "input")


def first_task(workflow_type: str, *args: Any) -> History:
    """A history that has just started its first workflow task."""
    started = {"workflowType": {"name": workflow_type}, "taskQueue": {"name": "q"}, "input": to_payloads(list(args))}
    return History("wf-1", (
        HistoryEvent(1, "WorkflowExecutionStarted", T0, started),
        HistoryEvent(2, "WorkflowTaskScheduled", T0, {}),
        HistoryEvent(3, "WorkflowTaskStarted", T0, {}),
    ))


def task_error(replayer: Replayer, workflow_type: str, *args: Any) -> BaseException | None:
    """What failed the first workflow task (None if it ran through)."""
    return replayer.replay_workflow(first_task(workflow_type, *args), raise_on_replay_failure=False).replay_failure


@pytest.fixture(scope="module")
def replayer() -> Replayer:
    return Replayer(workflows=[wf.CallRestricted, wf.Spelled, wf.Hides, wf.InitReadsClock, wf.CountsRuns])


def _default_restrictions() -> list[tuple[str, str]]:
    found = []
    for module, members in SandboxRestrictions.default.invalid_module_members.items():
        real: Any = importlib.import_module(module)
        for member in members:
            target = real
            for part in member.split("."):
                target = getattr(target, part, None)
            if target is not None:  # e.g. random.binomialvariate exists from Python 3.12 on
                found.append((module, member))
    return found


# ---------------------------------------------------------------------- restrictions
@pytest.mark.parametrize(("module", "member"), _default_restrictions(), ids=lambda v: v)
def test_every_default_restriction_raises_from_workflow_code(replayer: Replayer, module: str, member: str) -> None:
    error = task_error(replayer, "CallRestricted", module, member)
    assert isinstance(error, RestrictedWorkflowAccessError), error
    rule = SandboxRestrictions.default.invalid_module_members[module][member]
    name = f"{module}.{member}"
    assert error.qualified_name == name
    message = str(error)
    assert message.startswith(f"{name}() is not allowed in workflow code: {rule.why}. {rule.instead}")
    assert "sandbox_workflows.py" in message and "target()" in message  # the code line
    assert "workflow.unsafe.sandbox_unrestricted()" in message


def test_the_table_covers_what_the_issue_names() -> None:
    listed = {f"{m}.{member}" for m, member in _default_restrictions()}
    for name in ("time.time", "datetime.datetime.now", "random.random", "uuid.uuid4", "builtins.open",
                 "socket.socket", "subprocess.run", "subprocess.Popen", "os.system"):
        assert name in listed


@pytest.mark.parametrize("spelling", list(wf.SPELLINGS))
def test_common_spellings_are_caught(replayer: Replayer, spelling: str) -> None:
    error = task_error(replayer, "Spelled", spelling)
    assert isinstance(error, RestrictedWorkflowAccessError), f"{spelling}: {error!r}"
    assert "is not allowed in workflow code" in str(error)


def test_the_message_names_the_call_and_the_alternative(replayer: Replayer) -> None:
    error = task_error(replayer, "Spelled", "time.time")
    assert str(error).startswith(
        "time.time() is not allowed in workflow code: it differs on replay. Use workflow.time() / workflow.now()."
    )
    assert '"time.time": lambda: time.time(),' in str(error)  # the code line
    error = task_error(replayer, "Spelled", "datetime.now")
    assert str(error).startswith("datetime.datetime.now() is not allowed in workflow code: it differs on replay. Use workflow.now().")


def test_except_exception_cannot_hide_a_restricted_call(replayer: Replayer) -> None:
    assert isinstance(task_error(replayer, "Hides"), RestrictedWorkflowAccessError)


def test_the_workflow_init_is_checked_too(replayer: Replayer) -> None:
    error = task_error(replayer, "InitReadsClock")
    assert isinstance(error, RestrictedWorkflowAccessError) and error.qualified_name == "datetime.datetime.now"


def test_calls_with_a_time_argument_and_stand_ins_behave_as_the_originals() -> None:
    history = first_task("StandIns", {"items": [{"name": "pen"}], "placed": "2024-03-01T10:00:00"}, "2024-05-01T00:00:00+00:00")
    instance = Replayer(workflows=[wf.StandIns]).instance_for(history)
    commands = instance.apply(list(history.events))  # the last task runs live: its commands come back
    assert [c.kind for c in commands] == ["CompleteWorkflowExecution"]
    checks = from_json_payload(CONVERTER, commands[0].attributes["result"]["payloads"][0])
    assert checks and all(checks.values()), {k: v for k, v in checks.items() if not v}


def test_restricted_members_work_outside_workflow_code() -> None:
    # The module's own copy in a sandbox: its stand-ins call through when no workflow runs.
    runner = SandboxedWorkflowRunner()
    from engine._sandbox.loader import Sandbox

    sandbox = Sandbox(runner.kit)
    module = sandbox.load_class("tests.engine.sandbox_workflows", "SPELLINGS")
    assert module["time.time"]() > 0 and isinstance(module["datetime.now"](), datetime)


async def test_a_restricted_call_fails_the_task_and_fixed_code_finishes_the_run() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[wf.Clocked]):
        handle = await env.client.start_workflow("Clocked", id="clocked", task_queue="q")
        failed = await _task_failure(handle)
    assert failed.attributes["cause"] == "WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE"
    message = failed.attributes["failure"]["message"]
    assert message.startswith("time.time() is not allowed in workflow code")
    assert 'sandbox_workflows.py' in message and '"started = time.time()"' in message
    assert (await handle.describe()).status.name == "RUNNING"
    async with Worker(env.client, task_queue="q", workflows=[wf.ClockedFixed]):
        assert await handle.result() >= 1.0
    await env.shutdown()


async def test_a_workflow_can_choose_to_fail_on_a_restricted_call() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[wf.FailsOnRestricted]):
        with pytest.raises(WorkflowFailureError) as info:
            await env.client.execute_workflow(wf.FailsOnRestricted.run, id="fails", task_queue="q")
    await env.shutdown()
    assert "random.random() is not allowed in workflow code" in str(info.value.cause)


# ---------------------------------------------------------------------- isolation
async def _results(workflows: list[type], calls: list[tuple[Any, list[Any]]], **worker: Any) -> list[Any]:
    env = await WorkflowEnvironment.start_time_skipping()
    try:
        async with Worker(env.client, task_queue="q", workflows=workflows, **worker):
            return [
                await env.client.execute_workflow(run, args=args, id=f"run-{i}", task_queue="q")
                for i, (run, args) in enumerate(calls)
            ]
    finally:
        await env.shutdown()


async def test_module_globals_are_fresh_for_every_run() -> None:
    wf.RUNS.clear()
    results = await _results([wf.CountsRuns], [(wf.CountsRuns.run, []), (wf.CountsRuns.run, [])])
    assert results == [[1, True, False], [1, True, False]]
    assert wf.RUNS == []  # the host's module was not touched either


async def _task_failure(handle: Any) -> HistoryEvent:
    for _ in range(500):
        failed = [e for e in (await handle.fetch_history()).events if e.event_type == "WorkflowTaskFailed"]
        if failed:
            return failed[0]
        await asyncio.sleep(0.01)
    raise AssertionError("the workflow task never failed")


# ---------------------------------------------------------------------- escape hatches
async def test_sandbox_unrestricted_allows_the_calls_in_its_block() -> None:
    assert await _results([wf.Unrestricted], [(wf.Unrestricted.run, [])]) == [[True, True, False]]


async def test_sandboxed_false_runs_the_class_as_it_is() -> None:
    wf.RUNS.clear()
    results = await _results([wf.NotSandboxed], [(wf.NotSandboxed.run, []), (wf.NotSandboxed.run, [])])
    assert results == [[True, 1, False], [True, 2, False]]  # shared globals, unchecked calls
    assert len(wf.RUNS) == 2
    wf.RUNS.clear()


async def test_an_unsandboxed_runner_runs_a_whole_worker_without_the_sandbox() -> None:
    wf.RUNS.clear()
    results = await _results(
        [wf.CountsRuns, wf.Clocked], [(wf.CountsRuns.run, []), (wf.CountsRuns.run, []), (wf.Clocked.run, [])],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    assert results[:2] == [[1, False, False], [2, False, False]] and isinstance(results[2], float)
    wf.RUNS.clear()


@pytest.fixture
def write_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, str]], None]]:
    """Write modules (path -> source) into a folder on sys.path; forget them afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    tops: set[str] = set()

    def write(files: dict[str, str]) -> None:
        for relative, source in files.items():
            path = tmp_path / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source), encoding="utf-8")
            tops.add(relative.split("/")[0].removesuffix(".py"))
        importlib.invalidate_caches()

    yield write
    for name in [n for n in sys.modules if n.split(".")[0] in tops]:
        del sys.modules[name]


COUNTER = """
    calls: list[int] = []

    def count() -> int:
        calls.append(1)
        return len(calls)
"""


def _counting_workflow(import_line: str) -> str:
    return f"""
    from engine import workflow
    {import_line}

    @workflow.defn
    class Counting:
        @workflow.run
        async def run(self) -> int:
            return sbx_counter.count()
    """


async def test_imports_passed_through_share_one_module_between_runs(write_modules: Callable[[dict[str, str]], None]) -> None:
    write_modules({
        "sbx_counter.py": COUNTER,
        "sbx_fresh.py": _counting_workflow("import sbx_counter"),
        "sbx_shared.py": _counting_workflow("with workflow.unsafe.imports_passed_through():\n        import sbx_counter"),
    })
    import sbx_counter  # type: ignore[import-not-found]
    import sbx_fresh  # type: ignore[import-not-found]
    import sbx_shared  # type: ignore[import-not-found]

    twice = [(sbx_fresh.Counting.run, []), (sbx_fresh.Counting.run, [])]
    assert await _results([sbx_fresh.Counting], twice) == [1, 1]  # your own module: afresh per run
    assert sbx_counter.calls == []
    twice = [(sbx_shared.Counting.run, []), (sbx_shared.Counting.run, [])]
    assert await _results([sbx_shared.Counting], twice) == [1, 2]  # passed through: the host's module
    assert sbx_counter.calls == [1, 1]


async def test_passthrough_modules_of_the_runner(write_modules: Callable[[dict[str, str]], None]) -> None:
    write_modules({"sbx_counter2.py": COUNTER, "sbx_uses2.py": _counting_workflow("import sbx_counter2 as sbx_counter")})
    import sbx_uses2  # type: ignore[import-not-found]

    runner = SandboxedWorkflowRunner(SandboxRestrictions.default.with_passthrough_modules("sbx_counter2"))
    twice = [(sbx_uses2.Counting.run, []), (sbx_uses2.Counting.run, [])]
    assert await _results([sbx_uses2.Counting], twice, workflow_runner=runner) == [1, 2]
    everything = SandboxedWorkflowRunner(SandboxRestrictions.default.with_passthrough_all_modules())
    assert await _results([sbx_uses2.Counting], twice, workflow_runner=everything) == [3, 4]


async def test_passing_everything_through_still_checks_calls(write_modules: Callable[[dict[str, str]], None]) -> None:
    runner = SandboxedWorkflowRunner(SandboxRestrictions.default.with_passthrough_all_modules())
    replayer = Replayer(workflows=[wf.Spelled], workflow_runner=runner)
    assert isinstance(task_error(replayer, "Spelled", "uuid.uuid4"), RestrictedWorkflowAccessError)


def test_invalid_modules_cannot_be_imported(write_modules: Callable[[dict[str, str]], None]) -> None:
    write_modules({"sbx_imports_json.py": """
        from engine import workflow

        @workflow.defn
        class ImportsJson:
            @workflow.run
            async def run(self) -> str:
                import json
                return json.dumps(1)
        """})
    import sbx_imports_json  # type: ignore[import-not-found]

    runner = SandboxedWorkflowRunner(dataclasses.replace(SandboxRestrictions.default, invalid_modules=frozenset({"json"})))
    error = task_error(Replayer(workflows=[sbx_imports_json.ImportsJson], workflow_runner=runner), "ImportsJson")
    assert isinstance(error, RestrictedWorkflowAccessError) and "may not import 'json'" in str(error)
    assert task_error(Replayer(workflows=[sbx_imports_json.ImportsJson]), "ImportsJson") is None


def test_restrictions_and_runners_are_validated() -> None:
    with pytest.raises(ValueError, match="passthrough_modules must hold module names"):
        SandboxRestrictions.default.with_passthrough_modules("")
    with pytest.raises(TypeError, match="must be a SandboxRestrictions"):
        SandboxedWorkflowRunner("strict")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="workflow_runner must be SandboxedWorkflowRunner"):
        Worker(object(), task_queue="q", workflows=[wf.CountsRuns], workflow_runner=object())  # type: ignore[arg-type]


# ---------------------------------------------------------------------- what the sandbox loads
PACKAGE = {
    "sbx_shop/__init__.py": "",
    "sbx_shop/models.py": """
        from __future__ import annotations
        from dataclasses import dataclass

        @dataclass
        class Line:
            sku: str
            qty: int

        @dataclass
        class Basket:
            lines: list[Line]
    """,
    "sbx_shop/pricing.py": """
        PRICES = {"pen": 2}
        loaded: list[str] = []

        def total(lines) -> int:
            loaded.append("priced")
            return sum(PRICES[line.sku] * line.qty for line in lines)
    """,
    "sbx_shop/workflows.py": """
        from __future__ import annotations

        from engine import workflow

        from . import pricing
        from .models import Basket, Line

        @workflow.defn
        class Checkout:
            @workflow.run
            async def run(self, basket: Basket) -> list:
                return [
                    pricing.total(basket.lines),
                    all(type(line) is Line for line in basket.lines),
                    len(pricing.loaded),
                    workflow.unsafe.in_sandbox(),
                    __name__,
                ]
    """,
}


async def test_a_package_with_relative_imports_is_loaded_afresh_per_run(write_modules: Callable[[dict[str, str]], None]) -> None:
    write_modules(PACKAGE)
    from sbx_shop import pricing, workflows  # type: ignore[import-not-found]

    basket = {"lines": [{"sku": "pen", "qty": 3}]}
    results = await _results([workflows.Checkout], [(workflows.Checkout.run, [basket]), (workflows.Checkout.run, [basket])])
    assert results == [[6, True, 1, True, "sbx_shop.workflows"]] * 2
    assert pricing.loaded == []


def test_a_class_defined_in_a_function_is_refused_with_the_fix() -> None:
    @workflow.defn
    class Local:
        @workflow.run
        async def run(self) -> str:
            return "x"

    with pytest.raises(DefinitionError, match="defined inside a function.*sandboxed=False"):
        Worker(object(), task_queue="q", workflows=[Local])  # type: ignore[arg-type]

    @workflow.defn(sandboxed=False)
    class LocalUnsandboxed:
        @workflow.run
        async def run(self) -> str:
            return "x"

    Worker(object(), task_queue="q", workflows=[LocalUnsandboxed])  # type: ignore[arg-type]


def test_a_module_that_fails_in_the_sandbox_is_reported_when_the_worker_is_created(
    write_modules: Callable[[dict[str, str]], None],
) -> None:
    write_modules({"sbx_flaky_import.py": """
        import sys
        from engine import workflow

        if "sbx_flaky_import" in sys.modules and sys.modules["sbx_flaky_import"].__dict__.get("LOADED"):
            raise RuntimeError("this module refuses to load twice")
        LOADED = True

        @workflow.defn
        class Once:
            @workflow.run
            async def run(self) -> str:
                return "x"
        """})
    import sbx_flaky_import  # type: ignore[import-not-found]

    with pytest.raises(DefinitionError, match="workflow 'Once' cannot be loaded: RuntimeError: this module refuses to load twice"):
        Worker(object(), task_queue="q", workflows=[sbx_flaky_import.Once])  # type: ignore[arg-type]


def test_a_workflow_defined_in_a_script_runs_sandboxed(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent("""
        import asyncio, time
        from engine import Worker, workflow
        from engine.testing import WorkflowEnvironment

        RUNS = []

        @workflow.defn
        class FromScript:
            @workflow.run
            async def run(self, clock: bool) -> int:
                RUNS.append(1)
                if clock:
                    time.time()
                return len(RUNS)

        async def main():
            env = await WorkflowEnvironment.start_time_skipping()
            async with Worker(env.client, task_queue="q", workflows=[FromScript]):
                print(await env.client.execute_workflow(FromScript.run, False, id="a", task_queue="q"))
                print(await env.client.execute_workflow(FromScript.run, False, id="b", task_queue="q"))
                handle = await env.client.start_workflow(FromScript.run, True, id="c", task_queue="q")
                for _ in range(500):
                    failed = [e for e in (await handle.fetch_history()).events if e.event_type == "WorkflowTaskFailed"]
                    if failed:
                        print(failed[0].attributes["failure"]["message"].split(":")[0])
                        break
                    await asyncio.sleep(0.01)
            print(RUNS)
            await env.shutdown()

        if __name__ == "__main__":
            asyncio.run(main())
        """), encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["1", "1", "time.time() is not allowed in workflow code", "[]"]


async def test_a_sandboxed_history_replays(write_modules: Callable[[dict[str, str]], None]) -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[wf.ClockedFixed]):
        handle = await env.client.start_workflow(wf.ClockedFixed.run, id="replayed", task_queue="q")
        assert await handle.result() >= 1.0
        history = await handle.fetch_history()
    await env.shutdown()
    assert Replayer(workflows=[wf.ClockedFixed]).replay_workflow(history).replay_failure is None


# ---------------------------------------------------------------------- temporalio's imports
def test_the_docs_list_every_default_restriction() -> None:
    section = (ROOT / "docs" / "sandbox.md").read_text(encoding="utf-8").split("<!-- restrictions -->")[1].split("\n## ")[0]
    rows: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = line.split("|")
        if len(cells) > 3 and cells[1].strip() not in ("module", "---"):
            rows.setdefault(cells[1].strip(" `"), set()).update(n.split()[0].strip("`") for n in cells[2].split(","))
    documented = {(module, member) for module, members in rows.items() for member in members}
    listed = {(module, member) for module, members in SandboxRestrictions.default.invalid_module_members.items() for member in members}
    assert documented == listed


def test_the_docs_list_the_covered_temporalio_names() -> None:
    text = (ROOT / "docs" / "sandbox.md").read_text(encoding="utf-8")
    section = text.split("<!-- temporalio-names -->")[1]
    for module, names in TEMPORALIO_NAMES.items():
        line = next(line for line in section.splitlines() if line.startswith(f"| `{module}` |"))
        listed = {n.strip(" `") for n in line.split("|")[3].split(",")}
        expected = {theirs if theirs == ours else f"{theirs} (= {ours})" for theirs, ours in names.items()}
        assert listed == expected, module


def test_the_covered_names_exist_in_temporalio_and_in_the_engine() -> None:
    pytest.importorskip("temporalio")
    from engine._sandbox.temporalio_names import ENGINE_MODULES

    for module, names in TEMPORALIO_NAMES.items():
        theirs = importlib.import_module(module)
        ours = importlib.import_module(ENGINE_MODULES[module])
        for their_name, our_name in names.items():
            assert hasattr(theirs, their_name), f"{module}.{their_name}"
            assert hasattr(ours, our_name), f"{ours.__name__}.{our_name}"


def test_every_engine_name_temporalio_also_has_is_covered() -> None:
    pytest.importorskip("temporalio")
    from engine._sandbox.temporalio_names import ENGINE_MODULES

    for module, names in TEMPORALIO_NAMES.items():
        theirs = importlib.import_module(module)
        ours = importlib.import_module(ENGINE_MODULES[module])
        shared = {name for name in ours.__all__ if hasattr(theirs, name)}
        assert shared <= set(names.values()), f"add to engine/_sandbox/temporalio_names.py and docs/sandbox.md: {sorted(shared - set(names.values()))}"


TEMPORALIO_STYLE = """
    from datetime import timedelta

    import temporalio.exceptions
    import temporalio.workflow
    from temporalio import workflow as wf
    from temporalio.common import RetryPolicy

    @temporalio.workflow.defn
    class Styled:
        @wf.run
        async def run(self, fail: bool) -> str:
            if fail:
                raise temporalio.exceptions.ApplicationError("no", type="Refused", non_retryable=True)
            await temporalio.workflow.sleep(timedelta(seconds=5))
            assert isinstance(RetryPolicy(), RetryPolicy)
            return f"{wf.info().workflow_type} {temporalio.workflow.unsafe.in_sandbox()}"
"""


async def test_every_import_form_of_temporalio_maps_onto_the_engine(write_modules: Callable[[dict[str, str]], None]) -> None:
    write_modules({"sbx_styled.py": TEMPORALIO_STYLE})
    pytest.importorskip("temporalio")
    import sbx_styled  # type: ignore[import-not-found]

    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[sbx_styled.Styled]):
        assert await env.client.execute_workflow(sbx_styled.Styled.run, False, id="ok", task_queue="q") == "Styled True"
        with pytest.raises(WorkflowFailureError) as info:
            await env.client.execute_workflow("Styled", True, id="no", task_queue="q")
    await env.shutdown()
    assert info.value.cause.type == "Refused"  # type: ignore[attr-defined]


def test_temporalio_names_the_engine_lacks_raise_a_clear_error(write_modules: Callable[[dict[str, str]], None]) -> None:
    write_modules({
        "sbx_child.py": """
            from temporalio import workflow
            from temporalio.workflow import create_nexus_client

            @workflow.defn
            class Parent:
                @workflow.run
                async def run(self) -> None:
                    create_nexus_client("local")
            """,
        "sbx_wait.py": """
            from temporalio import workflow

            @workflow.defn
            class Waits:
                @workflow.run
                async def run(self) -> None:
                    workflow.set_current_details("later")
            """,
    })
    pytest.importorskip("temporalio")
    import sbx_child  # type: ignore[import-not-found]
    import sbx_wait  # type: ignore[import-not-found]

    with pytest.raises(DefinitionError, match=r"temporalio.workflow.create_nexus_client is not available on durable-lab's engine.*docs/sandbox.md"):
        Worker(object(), task_queue="q", workflows=[sbx_child.Parent])  # type: ignore[arg-type]
    error = task_error(Replayer(workflows=[sbx_wait.Waits]), "Waits")
    assert isinstance(error, AttributeError) and "temporalio.workflow.set_current_details is not available" in str(error)


@pytest.fixture(scope="module")
def oracle_pair() -> tuple[Any, Any]:
    pytest.importorskip("temporalio")
    from tests.engine.oracle import ours, theirs

    return ours, theirs


# Workflows of the temporalio oracle (tests/engine/oracle) that need no driving from outside.
ORACLE = {
    "OneActivity": "World",
    "ParallelActivities": ["Ada", "Grace"],
    "RetriedActivity": "report",
    "Timers": 10,
    "FailingActivity": "no budget",
    "DeterministicValues": "dice",
    "ConditionTimeout": 7,
    "StartThenAwait": "early",
    "RandomActivityId": "seeded",
    "ContinueOnce": 2,
    "Patched": "Ada",
}


async def _oracle_runs(module: Any, ours: Any) -> dict[str, tuple[Any, list[str], History]]:
    activities = [ours.greet, ours.flaky, ours.refuse, ours.wait_for_cancel]
    runs = {}
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[getattr(module, n) for n in ORACLE], activities=activities):
        for name, arg in ORACLE.items():
            handle = await env.client.start_workflow(getattr(module, name).run, arg, id=name, task_queue="q")
            try:
                outcome: Any = await handle.result()
            except WorkflowFailureError as e:
                outcome = f"failed: {e.cause}"
            history = await handle.fetch_history()
            runs[name] = (outcome, [e.event_type for e in history.events], history)
    await env.shutdown()
    return runs


async def test_the_temporalio_oracle_workflows_run_unchanged_on_the_engine(oracle_pair: tuple[Any, Any]) -> None:
    ours, theirs = oracle_pair
    with_our_imports = await _oracle_runs(ours, ours)
    with_temporalio_imports = await _oracle_runs(theirs, ours)
    for name in ORACLE:
        our_outcome, our_events, _ = with_our_imports[name]
        their_outcome, their_events, history = with_temporalio_imports[name]
        assert their_events == our_events, name
        if name in ("DeterministicValues", "Timers"):  # values seeded by the run id, or read from the clock
            assert their_outcome.keys() == our_outcome.keys(), name
        else:
            assert their_outcome == our_outcome, name
        # Our Replayer, given the temporalio-written class, agrees with the history it wrote.
        assert Replayer(workflows=[getattr(theirs, name)]).replay_workflow(history).replay_failure is None, name


def test_public_names_of_the_sandbox_module() -> None:
    from engine.worker import workflow_sandbox

    assert set(workflow_sandbox.__all__) == {
        "SandboxedWorkflowRunner", "UnsandboxedWorkflowRunner", "WorkflowRunner", "SandboxRestrictions",
        "Restriction", "RestrictedWorkflowAccessError", "register_source", "TEMPORALIO_NAMES",
    }
    for name in workflow_sandbox.__all__:
        assert hasattr(workflow_sandbox, name), name
    for name in ("imports_passed_through", "sandbox_unrestricted", "is_sandbox_unrestricted", "in_sandbox"):
        assert callable(getattr(workflow.unsafe, name)), name


def test_scripts_and_cells_re_run_their_definitions_only() -> None:
    from engine._sandbox.runner import compile_definitions

    source = textwrap.dedent("""
        import math
        effects = ["assigned"]
        effects.append("expression")
        for i in range(2):
            effects.append(i)
        try:
            from math import tau
            effects.append("inside try")
        except ImportError:
            tau = None
        if __name__ == "__main__":
            effects.append("main guard")
        total = await compute()

        def twice(x):
            return 2 * x
        """)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile_definitions(source, "<cell>"), namespace)
    assert namespace["effects"] == ["assigned"] and namespace["tau"] == namespace["math"].tau
    assert namespace["twice"](2) == 4 and "total" not in namespace


def test_code_that_runs_its_own_workflows_while_loaded_gets_a_clear_error(write_modules: Callable[[dict[str, str]], None]) -> None:
    body = """
        from datetime import datetime, timezone
        from engine import workflow
        from engine.history import History, HistoryEvent
        from engine.replay import Replayer

        @workflow.defn
        class Loops:
            @workflow.run
            async def run(self) -> None:
                pass

        T = datetime(2024, 1, 1, tzinfo=timezone.utc)
        STARTED = {"workflowType": {"name": "Loops"}, "taskQueue": {"name": "q"}}
        HISTORY = History("x", (HistoryEvent(1, "WorkflowExecutionStarted", T, STARTED),
                                HistoryEvent(2, "WorkflowTaskScheduled", T, {}), HistoryEvent(3, "WorkflowTaskStarted", T, {})))
        REPLAYER = Replayer(workflows=[Loops])  # a worker or a replayer at module level is fine
        """
    write_modules({"sbx_fine.py": body, "sbx_loops.py": body + "RESULT = REPLAYER.replay_workflow(HISTORY)\n"})
    import sbx_fine  # type: ignore[import-not-found]

    assert sbx_fine.REPLAYER.replay_workflow(sbx_fine.HISTORY).replay_failure is None
    with pytest.raises(DefinitionError, match="started another run of the same code"):
        import sbx_loops  # type: ignore[import-not-found]  # noqa: F401
