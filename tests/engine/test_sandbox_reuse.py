"""A finished run's module copy goes to the next run only if the run left it as it was loaded
(engine/_sandbox/reuse.py): every way workflow code can change its module's state makes the
next run load the module afresh, and a run never shares a copy with a run still going."""

from __future__ import annotations

import asyncio
import importlib
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from engine import Client, Worker
from engine._runtime.info import WorkflowInfo
from engine._sandbox.loader import Sandbox
from engine._sandbox.reuse import state_of
from engine._sandbox.translation import workflow_definition
from engine.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

MODULE = """
    from __future__ import annotations

    import asyncio
    from collections import deque
    from typing import Any

    import sbx_reuse_loads
    from engine import workflow

    sbx_reuse_loads.LOADS += 1  # a module passed through: shared by every copy, counts the loads

    VERSION = {version!r}
    COUNT = 0
    SEEN: list[str] = []
    TABLE: dict[str, int] = {{}}
    NESTED = ([],)
    TAGS = {{"a"}}
    QUEUE: deque[int] = deque()


    class Box:
        def __init__(self) -> None:
            self.items: list[int] = []
            self.n = 0


    BOX = Box()


    def remember(x: int, into: list[int] = []) -> list[int]:
        into.append(x)
        return into


    def counter() -> Any:
        n = 0

        def inc() -> int:
            nonlocal n
            n += 1
            return n

        return inc


    INC = counter()


    def plain() -> int:
        return 1


    class Helper:
        @staticmethod
        def twice(x: int) -> int:
            return 2 * x


    async def stubborn() -> None:
        while True:
            try:
                await workflow.wait_condition(lambda: False)
            except asyncio.CancelledError:
                continue


    @workflow.defn
    class Quick:
        @workflow.run
        async def run(self, n: int) -> int:
            return 2 * n


    @workflow.defn
    class Mutates:
        visits: list[str] = []
        level = 0

        @workflow.run
        async def run(self, how: str) -> dict[str, Any]:
            global COUNT, SEEN
            seen = {{
                "version": VERSION, "COUNT": COUNT, "SEEN": list(SEEN), "TABLE": dict(TABLE), "NESTED": list(NESTED[0]),
                "TAGS": sorted(TAGS), "QUEUE": list(QUEUE), "BOX": [list(BOX.items), BOX.n],
                "default": len(remember.__defaults__[0]), "cell": INC.__closure__[0].cell_contents,
                "visits": list(Mutates.visits), "level": Mutates.level, "marked": getattr(plain, "marked", None),
                "plain": plain(), "twice": Helper.twice(2),
            }}
            if how == "rebind":
                COUNT += 1
            elif how == "rebind_equal":
                SEEN = []  # an equal list, but another object: later changes to it must count
            elif how == "list":
                SEEN.append("x")
            elif how == "dict":
                TABLE["x"] = 1
            elif how == "nested":
                NESTED[0].append(1)
            elif how == "set":
                TAGS.add("b")
            elif how == "deque":
                QUEUE.append(1)
            elif how == "instance":
                BOX.n += 1
            elif how == "instance_list":
                BOX.items.append(1)
            elif how == "default":
                remember(1)
            elif how == "cell":
                INC()
            elif how == "class_list":
                Mutates.visits.append("x")
            elif how == "class_attr":
                Mutates.level = 1
            elif how == "function_attr":
                plain.marked = True
            elif how == "function_code":
                plain.__code__ = (lambda: 2).__code__
            elif how == "staticmethod":
                Helper.twice = staticmethod(lambda x: 3 * x)
            elif how == "stubborn":
                asyncio.ensure_future(stubborn())
            return seen
"""

FRESH = {
    "version": "v1", "COUNT": 0, "SEEN": [], "TABLE": {}, "NESTED": [], "TAGS": ["a"], "QUEUE": [], "BOX": [[], 0],
    "default": 0, "cell": 0, "visits": [], "level": 0, "marked": None, "plain": 1, "twice": 4,
}
CHANGES = [
    "rebind", "list", "dict", "nested", "set", "deque", "instance", "instance_list", "default", "cell",
    "class_list", "class_attr", "function_attr", "function_code", "staticmethod",
]


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Any]]:
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "sbx_reuse_loads.py").write_text("LOADS = 0\n", encoding="utf-8")

    def write(version: str) -> Any:
        (tmp_path / "sbx_reuse_mod.py").write_text(textwrap.dedent(MODULE.format(version=version)), encoding="utf-8")
        importlib.invalidate_caches()
        sys.modules.pop("sbx_reuse_mod", None)
        return importlib.import_module("sbx_reuse_mod")

    yield write
    for name in ("sbx_reuse_mod", "sbx_reuse_loads"):
        sys.modules.pop(name, None)


def _info(workflow_type: str) -> WorkflowInfo:
    return WorkflowInfo(workflow_id="w", run_id="r", workflow_type=workflow_type, task_queue="q", namespace="default")


def _import(path: Path, name: str, source: str) -> Any:
    """Write ``source`` to ``path`` and import it as ``name``."""
    path.write_text(source, encoding="utf-8")
    importlib.invalidate_caches()
    return importlib.import_module(name)


def _runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(SandboxRestrictions.default.with_passthrough_modules("sbx_reuse_loads"))


async def _run_each(host: Any, runner: SandboxedWorkflowRunner, hows: list[str], *, between: Callable[[], Any] | None = None) -> list[tuple[dict[str, Any], int]]:
    """Run the workflow once per entry, one after another: what each saw, and the module loads so far."""
    loads = importlib.import_module("sbx_reuse_loads")
    out = []
    client = await Client.connect(":memory:")
    try:
        async with Worker(client, task_queue="q", workflows=[host.Mutates], workflow_runner=runner):
            for k, how in enumerate(hows):
                if between is not None and k:
                    await between()
                seen = await client.execute_workflow(host.Mutates.run, how, id=f"reuse-{k}", task_queue="q")
                out.append((seen, loads.LOADS))
    finally:
        await client.close()
    return out


async def test_an_untouched_copy_is_reused_and_every_change_makes_a_fresh_load(module: Callable[[str], Any]) -> None:
    host = module("v1")
    runner = _runner()
    hows = ["none", "none", "none"]
    for change in CHANGES:
        hows += [change, "none", "none"]
    results = await _run_each(host, runner, hows)
    for how, (seen, _) in zip(hows, results):
        assert seen == FRESH, how  # every run sees its module as loaded
    loads = [n for _, n in results]
    # The host import, the worker's trial load and the first run; then the untouched copy is reused.
    first = loads[0]
    assert loads[1] == loads[2] == first
    for index, change in enumerate(CHANGES):
        at = 3 + 3 * index
        assert loads[at] == loads[at - 1], f"{change}: the run before it left its copy untouched"
        assert loads[at + 1] == loads[at] + 1, f"{change}: the next run must load afresh"
        assert loads[at + 2] == loads[at + 1], f"{change}: the fresh copy, untouched, is reused"
    assert runner.copies.taken == len(hows) - 1 - len(CHANGES)


async def test_a_global_rebound_to_an_equal_object_is_a_change(module: Callable[[str], Any]) -> None:
    host = module("v1")
    runner = _runner()
    results = await _run_each(host, runner, ["none", "rebind_equal", "list", "none"])
    assert all(seen == FRESH for seen, _ in results)
    loads = [n for _, n in results]
    assert loads[2] == loads[1] + 1 and loads[3] == loads[2] + 1


async def test_a_run_with_a_coroutine_still_going_gives_its_copy_back_to_nobody(module: Callable[[str], Any]) -> None:
    host = module("v1")
    runner = _runner()
    results = await _run_each(host, runner, ["none", "stubborn", "none"])
    loads = [n for _, n in results]
    assert loads[1] == loads[0] and loads[2] == loads[1] + 1


async def test_a_rewritten_module_is_loaded_instead_of_a_pooled_copy(module: Callable[[str], Any]) -> None:
    host = module("v1")
    runner = _runner()
    path = Path(host.__file__)

    async def rewrite() -> None:
        path.write_text(path.read_text(encoding="utf-8").replace("VERSION = 'v1'", "VERSION = 'v2'"), encoding="utf-8")
        await asyncio.sleep(0)  # a later iteration of the event loop: the file is checked again

    results = await _run_each(host, runner, ["none", "none"], between=rewrite)
    assert [seen["version"] for seen, _ in results] == ["v1", "v2"]


def test_copies_in_use_are_never_handed_out_twice(module: Callable[[str], Any]) -> None:
    host = module("v1")
    runner = _runner()
    defn = workflow_definition(host.Mutates)
    info = _info("Mutates")
    first, second = runner.create_instance(defn, info), runner.create_instance(defn, info)
    assert first.defn.cls is not second.defn.cls
    first.evict()
    third = runner.create_instance(defn, info)  # the copy first gave back
    assert third.defn.cls is first.defn.cls and runner.copies.taken == 1
    fourth = runner.create_instance(defn, info)  # none left in the pool: a fresh one
    assert fourth.defn.cls not in (first.defn.cls, second.defn.cls)
    first.evict()  # evicting twice gives nothing back twice
    assert runner.create_instance(defn, info).defn.cls not in (first.defn.cls, second.defn.cls, fourth.defn.cls)


def test_state_the_check_cannot_read_is_never_pooled(module: Callable[[str], Any], tmp_path: Path) -> None:
    hidden = _import(
        tmp_path / "sbx_reuse_hidden.py", "sbx_reuse_hidden",
        "import random\nfrom engine import workflow\nRNG = random.Random(1)\n\n"
        "@workflow.defn\nclass Hidden:\n    @workflow.run\n    async def run(self) -> int:\n        return 1\n",
    )
    try:
        runner = _runner()
        defn = workflow_definition(hidden.Hidden)
        sandbox = Sandbox(runner.kit)
        runner._load(defn, runner._recipe_of(defn), sandbox)
        assert state_of(sandbox) is None  # a Random keeps its state in C
        info = _info("Hidden")
        instance = runner.create_instance(defn, info)
        instance.evict()
        assert runner.create_instance(defn, info).defn.cls is not instance.defn.cls and runner.copies.taken == 0
    finally:
        sys.modules.pop("sbx_reuse_hidden", None)


def test_a_module_of_a_namespace_package_is_pooled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The package's loader holds a path object with bound methods: the import system's, shared.
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "sbx_reuse_ns").mkdir()
    flows = _import(
        tmp_path / "sbx_reuse_ns" / "flows.py", "sbx_reuse_ns.flows",
        "from engine import workflow\n\n@workflow.defn\nclass Flow:\n    @workflow.run\n    async def run(self) -> int:\n        return 1\n",
    )
    try:
        runner = _runner()
        defn = workflow_definition(flows.Flow)
        info = _info("Flow")
        first = runner.create_instance(defn, info)
        first.evict()
        assert runner.create_instance(defn, info).defn.cls is first.defn.cls and runner.copies.taken == 1
    finally:
        for name in ("sbx_reuse_ns.flows", "sbx_reuse_ns"):
            sys.modules.pop(name, None)


async def test_runs_that_finish_in_one_task_hand_their_copy_on_at_once(module: Callable[[str], Any]) -> None:
    # A run whose code is done lets go of its copy when its task ends, not when the task's
    # commit comes back: the other tasks of the same batch take it.
    host = module("v1")
    runner = _runner()
    loads = importlib.import_module("sbx_reuse_loads")
    client = await Client.connect(":memory:")
    try:
        async with Worker(client, task_queue="q", workflows=[host.Quick], workflow_runner=runner):
            for batch in range(2):
                before = loads.LOADS
                handles = await asyncio.gather(*(client.start_workflow(host.Quick.run, k, id=f"quick-{batch}-{k}", task_queue="q") for k in range(40)))
                assert [await h.result() for h in handles] == [2 * k for k in range(40)]
                assert loads.LOADS - before <= 3, f"batch {batch}: {loads.LOADS - before} loads for 40 runs"
    finally:
        await client.close()
    assert runner.copies.taken >= 75


def test_a_check_that_fails_drops_the_copy_and_leaves_the_eviction_alone(module: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from engine._sandbox import reuse

    host = module("v1")
    runner = _runner()
    defn = workflow_definition(host.Mutates)
    info = _info("Mutates")
    first = runner.create_instance(defn, info)

    def unreadable(self: Any) -> bool:
        raise RuntimeError("an object that will not be read")

    monkeypatch.setattr(reuse.State, "unchanged", unreadable)
    first.evict()  # no error reaches the worker's eviction
    assert runner.create_instance(defn, info).defn.cls is not first.defn.cls and runner.copies.taken == 0
