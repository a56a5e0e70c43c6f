"""What the sandbox's per-run shortcuts must not change: every run's copy of the workflow's
module is its own (globals, class attributes, dataclasses, type hints), and a rewritten
module file is what the next run loads.

The sandbox reuses work that does not depend on the copy (compiled code, type hints whose
names resolve to shared objects, one stat of the file per event-loop iteration); these tests
pin down that nothing of one run's copy reaches another.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import sys
import textwrap
import weakref
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from engine._runtime.definitions import WorkflowDefinition, hints_of

from engine._sandbox.translation import workflow_definition
from engine.worker.workflow_sandbox import SandboxedWorkflowRunner

STATEFUL = """
    from __future__ import annotations

    from dataclasses import dataclass, field

    from engine import activity, workflow

    COUNT = 0
    SEEN: list[str] = []
    TABLE: dict[str, int] = {}


    def bump() -> int:
        global COUNT
        COUNT += 1
        return COUNT


    @dataclass
    class Order:
        sku: str
        tags: list[str] = field(default_factory=list)
        made = 0  # a class attribute of a dataclass


    @activity.defn
    async def price(order: Order) -> Order:
        return order


    @workflow.defn
    class Shop:
        visits: list[str] = []

        @workflow.run
        async def run(self, order: Order, n: int) -> Order:
            return order

        @workflow.signal
        async def poke(self, order: Order) -> None:
            pass
"""


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], Any]]:
    """Write a module into a folder on sys.path and import it in the host; forget it afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def write(name: str, source: str) -> Any:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        importlib.invalidate_caches()
        names.append(name)
        return importlib.import_module(name)

    yield write
    for name in names:
        sys.modules.pop(name, None)


def _globals(defn: WorkflowDefinition) -> dict[str, Any]:
    return defn.run_fn.__globals__


def test_each_copy_has_its_own_globals_class_attributes_and_dataclasses(module_dir: Callable[[str, str], Any]) -> None:
    host = module_dir("sbx_stateful", STATEFUL)
    runner = SandboxedWorkflowRunner()
    first = runner.fresh_definition(workflow_definition(host.Shop))
    g1 = _globals(first)
    g1["bump"](), g1["bump"]()
    g1["SEEN"].append("first")
    g1["TABLE"]["first"] = 1
    first.cls.visits.append("first")
    g1["Order"].made = 5

    second = runner.fresh_definition(workflow_definition(host.Shop))
    g2 = _globals(second)
    assert g1["COUNT"] == 2 and g2["COUNT"] == 0 and g2["bump"]() == 1
    assert g2["SEEN"] == [] and g2["TABLE"] == {} and second.cls.visits == [] and g2["Order"].made == 0
    assert second.cls is not first.cls and g2["Order"] is not g1["Order"]
    assert host.COUNT == 0 and host.SEEN == [] and host.Shop.visits == [] and host.Order.made == 0


def test_hints_naming_a_class_of_the_module_are_that_copys_class(module_dir: Callable[[str, str], Any]) -> None:
    host = module_dir("sbx_hinted", STATEFUL)
    runner = SandboxedWorkflowRunner()
    copies = [runner.fresh_definition(workflow_definition(host.Shop)) for _ in range(3)]
    for defn in copies:
        order = _globals(defn)["Order"]
        assert defn.arg_types == (order, int) and defn.result_type is order
        price = _globals(defn)["price"].__activity_definition__
        assert price.arg_types == (order,) and price.result_type is order
        assert hints_of(defn.signals["poke"], skip_self=True) == ((order,), None)
    assert len({id(_globals(defn)["Order"]) for defn in copies}) == 3
    # The hints cache keeps no copy alive: it stops caching hints whose names change per copy.
    gone = weakref.ref(_globals(copies[0])["Order"])
    del copies, defn, order, price
    gc.collect()
    assert gone() is None


def _function(source: str, scope: dict[str, Any]) -> Any:
    exec(compile(textwrap.dedent(source), "<hints>", "exec", dont_inherit=True), scope)
    return scope["f"]


def test_cached_hints_follow_what_the_names_mean_in_each_copy() -> None:
    code = compile("from __future__ import annotations\ndef f(a: Alias, b: str, c: list[Alias]) -> Size: ...", "<hints>", "exec")
    seen = []
    for alias, size in ((int, float), (int, float), (bytes, float), (bytes, complex)):
        scope: dict[str, Any] = {"Alias": alias, "Size": size}
        exec(code, scope)
        seen.append(hints_of(scope["f"], skip_self=False))
    assert seen[0] == seen[1] == ((int, str, list[int]), float)
    assert seen[2] == ((bytes, str, list[bytes]), float)
    assert seen[3] == ((bytes, str, list[bytes]), complex)
    # A module that binds a builtin's name gets its own object, not the builtin.
    shadowed: dict[str, Any] = {"Alias": int, "Size": float, "str": bytes}
    exec(code, shadowed)
    assert hints_of(shadowed["f"], skip_self=False) == ((int, bytes, list[int]), float)


def test_annotations_that_call_or_nest_strings_are_evaluated_every_time() -> None:
    made: list[int] = []

    def make() -> type:
        made.append(1)
        return int

    code = compile("from __future__ import annotations\ndef f(a: make(), b: list['Later']) -> None: ...", "<hints>", "exec")
    calls = []
    for later in (str, bytes, str):
        scope: dict[str, Any] = {"make": make, "Later": later}
        exec(code, scope)
        assert hints_of(scope["f"], skip_self=False) == ((int, list[later]), type(None))
        calls.append(len(made))
    assert 0 < calls[0] < calls[1] < calls[2]


REWRITTEN = """
    from engine import workflow

    @workflow.defn
    class Versioned:
        @workflow.run
        async def run(self) -> str:
            return {version!r}
"""


async def test_a_rewritten_module_is_what_the_next_run_loads(module_dir: Callable[[str, str], Any], monkeypatch: pytest.MonkeyPatch) -> None:
    host = module_dir("sbx_versioned", REWRITTEN.format(version="v1"))
    path = Path(host.__file__)
    runner = SandboxedWorkflowRunner()
    defn = workflow_definition(host.Versioned)
    stats: list[str] = []
    real_stat = os.stat

    def counting_stat(target: Any, *args: Any, **kwargs: Any) -> Any:
        stats.append(str(target))
        return real_stat(target, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)

    async def result() -> str:
        return await runner.fresh_definition(defn).cls().run()  # type: ignore[no-any-return]

    assert await result() == "v1"
    # Runs started in one iteration of the event loop (a worker's claimed batch) share one stat.
    copies = [runner.fresh_definition(defn) for _ in range(5)]
    assert len({id(c.cls) for c in copies}) == 5 and stats.count(str(path)) == 1

    path.write_text(textwrap.dedent(REWRITTEN.format(version="version 2")), encoding="utf-8")
    await asyncio.sleep(0)  # the next iteration: the file is checked again
    assert await result() == "version 2"
    assert stats.count(str(path)) == 2


def test_without_a_running_loop_every_run_checks_the_file(module_dir: Callable[[str, str], Any]) -> None:
    host = module_dir("sbx_versioned_sync", REWRITTEN.format(version="v1"))
    runner = SandboxedWorkflowRunner()
    defn = workflow_definition(host.Versioned)
    assert asyncio.run(runner.fresh_definition(defn).cls().run()) == "v1"
    Path(host.__file__).write_text(textwrap.dedent(REWRITTEN.format(version="version 2")), encoding="utf-8")
    assert asyncio.run(runner.fresh_definition(defn).cls().run()) == "version 2"
