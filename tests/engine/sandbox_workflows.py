"""Workflows for test_sandbox.py. The sandbox runs this module afresh for every run."""

from __future__ import annotations

import builtins
import datetime as dt
import os
import random
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from random import randint
from time import time as clock
from typing import Any, Callable

from engine import workflow
from engine.errors import RestrictedWorkflowAccessError

# Module state: every sandboxed run has its own list.
RUNS: list[str] = []


@workflow.defn
class CallRestricted:
    """Calls the restricted member ``module.member`` without arguments (the check comes
    before the call, so arguments do not matter)."""

    @workflow.run
    async def run(self, module: str, member: str) -> str:
        target: Any = __import__(module, fromlist=["_"])  # the sandbox's import: the module's view
        for part in member.split("."):
            target = getattr(target, part)
        target()
        return "called"


# How workflow code usually spells the forbidden calls.
SPELLINGS: dict[str, Callable[[], Any]] = {
    "time.time": lambda: time.time(),
    "from time import time": lambda: clock(),
    "time.sleep": lambda: time.sleep(0.01),
    "time.localtime()": lambda: time.localtime(),
    "datetime.now": lambda: datetime.now(),
    "datetime.utcnow": lambda: datetime.utcnow(),
    "dt.datetime.now": lambda: dt.datetime.now(dt.timezone.utc),
    "date.today": lambda: date.today(),
    "random.random": lambda: random.random(),
    "from random import randint": lambda: randint(1, 6),
    "random.shuffle": lambda: random.shuffle([1, 2]),
    "uuid.uuid4": lambda: uuid.uuid4(),
    "open": lambda: open(__file__),
    "builtins.open": lambda: builtins.open(__file__),
    "input": lambda: input(),
    "os.getenv": lambda: os.getenv("HOME"),
    "os.urandom": lambda: os.urandom(4),
    "os.system": lambda: os.system("true"),
    "socket.socket": lambda: socket.socket(),
    "urllib.request.urlopen": lambda: urllib.request.urlopen("http://localhost"),
    "subprocess.run": lambda: subprocess.run(["true"]),
    "threading.Thread": lambda: threading.Thread(target=print),
    "ThreadPoolExecutor": lambda: ThreadPoolExecutor(),
}


@workflow.defn
class Spelled:
    @workflow.run
    async def run(self, spelling: str) -> str:
        SPELLINGS[spelling]()
        return "called"


@workflow.defn
class Hides:
    """Catches the error: the task fails anyway."""

    @workflow.run
    async def run(self) -> str:
        try:
            time.time()
        except Exception:  # noqa: BLE001 - the point of the test
            return "hidden"
        return "not raised"


@workflow.defn(failure_exception_types=[RestrictedWorkflowAccessError])
class FailsOnRestricted:
    @workflow.run
    async def run(self) -> str:
        return str(random.random())


@workflow.defn(name="Clocked")
class Clocked:
    @workflow.run
    async def run(self) -> float:
        started = time.time()
        await workflow.sleep(1)
        return time.time() - started


@workflow.defn(name="Clocked")
class ClockedFixed:
    @workflow.run
    async def run(self) -> float:
        started = workflow.time()
        await workflow.sleep(1)
        return workflow.time() - started


@workflow.defn
class CountsRuns:
    @workflow.run
    async def run(self) -> list[Any]:
        RUNS.append(workflow.info().workflow_id)
        return [len(RUNS), workflow.unsafe.in_sandbox(), workflow.unsafe.is_sandbox_unrestricted()]


@workflow.defn
class Unrestricted:
    @workflow.run
    async def run(self) -> list[Any]:
        with workflow.unsafe.sandbox_unrestricted():
            stamp = time.time()
            flag = workflow.unsafe.is_sandbox_unrestricted()
        return [stamp > 0, flag, workflow.unsafe.is_sandbox_unrestricted()]


@workflow.defn(sandboxed=False)
class NotSandboxed:
    @workflow.run
    async def run(self) -> list[Any]:
        RUNS.append(workflow.info().workflow_id)
        return [time.time() > 0, len(RUNS), workflow.unsafe.in_sandbox()]


@workflow.defn
class InitReadsClock:
    def __init__(self) -> None:
        self.started = datetime.now()  # __init__ is workflow code too

    @workflow.run
    async def run(self) -> str:
        return "unreachable"


@dataclass
class Item:
    name: str


@dataclass
class Order:
    items: list[Item]
    placed: datetime


@workflow.defn
class StandIns:
    """The stand-ins for datetime and friends behave like the originals where that is allowed."""

    @workflow.run
    async def run(self, order: Order, when: datetime) -> dict[str, Any]:
        now = workflow.now()
        return {
            "nested item is the run's own class": type(order.items[0]) is Item,
            "datetime field converted": isinstance(order.placed, datetime) and order.placed.year == 2024,
            "datetime argument converted": isinstance(when, datetime) and when.month == 5,
            "isinstance(workflow.now(), datetime)": isinstance(now, datetime) and isinstance(now, dt.datetime),
            "datetime(...) builds a real datetime": type(datetime(2024, 1, 1)) is type(now),
            "issubclass(real datetime, datetime)": issubclass(type(now), datetime) and issubclass(type(now), date),
            "fromisoformat": datetime.fromisoformat("2024-01-02T00:00:00").day == 2,
            "time.localtime(secs)": time.localtime(0).tm_year == 1970,
            "random.Random(seed)": random.Random(7).randint(1, 10**6) == random.Random(7).randint(1, 10**6),
            "uuid.uuid5": uuid.uuid5(uuid.NAMESPACE_DNS, "x") == uuid.uuid5(uuid.NAMESPACE_DNS, "x"),
            "repr": repr(datetime) == "<class 'datetime.datetime'>",
        }
