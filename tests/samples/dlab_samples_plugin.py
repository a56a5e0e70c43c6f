"""pytest plugin for Temporal's samples' own tests, run against the engine.

``tests/samples/test_samples.py`` runs ``pytest -p dlab_samples_plugin --noconftest`` on
``../shared/reference/samples-python/tests`` in a subprocess. This plugin stands in for the
samples' ``conftest.py`` (which ``--noconftest`` leaves out; it starts a Temporal server):

- it turns the temporalio switch on before any test module is imported, so the samples'
  ``temporalio`` imports give the engine's objects (``engine.temporalio_compat``);
- ``env`` is the engine's ``WorkflowEnvironment.start_local()`` (real time, in memory, as the
  samples' default "local" environment is a dev server) and ``client`` its client, one fresh
  engine per test;
- it runs ``async def`` tests itself, each on a fresh event loop with a time limit (the samples
  use pytest-asyncio for this; the environment is created on the test's own loop, so no
  plugin is needed), and writes every test's outcome to ``$DLAB_SAMPLES_REPORT`` (JSON).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
from typing import Any

import pytest

from engine import temporalio_compat
from engine._sandbox import temporalio_names as _temporalio_names

temporalio_compat.install()

TIME_LIMIT = float(os.environ.get("DLAB_SAMPLES_TEST_TIMEOUT", "20"))
_outcomes: dict[str, dict[str, str]] = {}


class _OnTheTestsLoop:
    """``env`` or ``client``: made when the test runs, on its event loop."""

    def __init__(self, what: str) -> None:
        self.what = what


def pytest_addoption(parser: pytest.Parser) -> None:
    # The samples' conftest option: here there is one environment, the engine.
    parser.addoption("--workflow-environment", default="local", help="Ignored: the samples run on durable-lab's engine.")


@pytest.fixture
def env() -> _OnTheTestsLoop:
    return _OnTheTestsLoop("env")


@pytest.fixture
def client() -> _OnTheTestsLoop:
    return _OnTheTestsLoop("client")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: Any) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    from engine.testing import WorkflowEnvironment

    async def run() -> None:
        environment: Any = None
        args = {}
        for name in pyfuncitem._fixtureinfo.argnames:
            value = pyfuncitem.funcargs[name]
            if isinstance(value, _OnTheTestsLoop):
                if environment is None:
                    environment = await WorkflowEnvironment.start_local()
                value = environment if value.what == "env" else environment.client
            args[name] = value
        already = len(_temporalio_names.MISSING)
        test = asyncio.ensure_future(pyfuncitem.obj(**args))
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + TIME_LIMIT
            # Fail at once when the sample asks for a temporalio name the engine lacks: where
            # it is raised (an activity, retried for ever) the error may never reach the test.
            while not test.done():
                await asyncio.wait([test], timeout=0.05)
                missing = list(dict.fromkeys(_temporalio_names.MISSING[already:]))
                if missing and not test.done():
                    raise AssertionError(f"the sample uses names the engine does not support yet: {', '.join(missing)}")
                if loop.time() > deadline and not test.done():
                    raise AssertionError(f"the test did not finish within {TIME_LIMIT:g}s")
            test.result()
        finally:
            if not test.done():
                test.cancel()
                await asyncio.wait([test], timeout=2)
            if environment is not None:
                await environment.shutdown()

    asyncio.run(run())
    return True


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        message = ""
        if report.outcome != "passed":
            message = _summary(report)
        _outcomes[report.nodeid] = {"outcome": report.outcome, "message": message}


def _summary(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    if isinstance(report.longrepr, tuple):  # a skip: (file, line, reason)
        return str(report.longrepr[2])
    return str(report.longrepr).strip().splitlines()[-1] if report.longrepr else ""


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _outcomes[report.nodeid] = {"outcome": "error", "message": _summary(report)}  # type: ignore[arg-type]


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get("DLAB_SAMPLES_REPORT")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(_outcomes, f, indent=1, sort_keys=True)
