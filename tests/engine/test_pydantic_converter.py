"""engine.contrib.pydantic (temporalio.contrib.pydantic's): pydantic models, and the types
pydantic knows (IPv4Address, datetime), through a workflow and an activity and back."""

from __future__ import annotations

from datetime import datetime, timedelta
from ipaddress import IPv4Address

import pytest

pydantic = pytest.importorskip("pydantic")

from engine import Worker, activity, workflow  # noqa: E402
from engine.client import Client  # noqa: E402
from engine.contrib.pydantic import pydantic_data_converter  # noqa: E402
from engine.testing import WorkflowEnvironment  # noqa: E402


class Model(pydantic.BaseModel):
    ip: IPv4Address
    when: datetime


@activity.defn
async def echo_models(models: list[Model]) -> list[Model]:
    assert all(isinstance(m, Model) for m in models)
    return models


@workflow.defn  # sandboxed: its `datetime` is the sandbox's stand-in, which pydantic must read as datetime
class Models:
    @workflow.run
    async def run(self, models: list[Model]) -> list[Model]:
        assert all(isinstance(m.ip, IPv4Address) for m in models)
        return await workflow.execute_activity(echo_models, models, start_to_close_timeout=timedelta(seconds=5))


async def test_models_go_through_a_workflow_and_an_activity() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    client = Client(**{**env.client.config(), "data_converter": pydantic_data_converter})
    models = [Model(ip=IPv4Address("127.0.0.1"), when=datetime(2000, 1, 2, 3, 4, 5))]
    async with Worker(client, task_queue="q", workflows=[Models], activities=[echo_models]):
        assert await client.execute_workflow(Models.run, models, id="m", task_queue="q") == models
        history = await client.get_workflow_handle("m").fetch_history()
    await env.shutdown()
    started = history.events[0].attributes["input"]["payloads"][0]
    # As temporalio's: json/plain written by pydantic.
    import base64

    assert base64.b64decode(started["data"]) == b'[{"ip":"127.0.0.1","when":"2000-01-02T03:04:05"}]'


SANDBOXED = '''
from datetime import datetime, timedelta
from ipaddress import IPv4Address

from engine import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel


class Stamped(BaseModel):
    when: datetime


@workflow.defn
class Stamps:
    @workflow.run
    async def run(self, stamps: list[Stamped]) -> list[Stamped]:
        return stamps
'''


async def test_a_sandboxed_module_with_a_datetime_field(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # In the sandbox `datetime` is a stand-in class: pydantic must build its schema as datetime's.
    import importlib
    import sys

    (tmp_path / "pyd_sandboxed.py").write_text(SANDBOXED)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("pyd_sandboxed")
    try:
        env = await WorkflowEnvironment.start_time_skipping()
        client = Client(**{**env.client.config(), "data_converter": pydantic_data_converter})
        stamps = [module.Stamped(when=datetime(2000, 1, 2, 3, 4, 5))]
        async with Worker(client, task_queue="q", workflows=[module.Stamps]):
            assert await client.execute_workflow(module.Stamps.run, stamps, id="s", task_queue="q") == stamps
        await env.shutdown()
    finally:
        del sys.modules["pyd_sandboxed"]


def test_public_names_are_temporalios() -> None:
    import engine.contrib.pydantic as ours

    assert set(ours.__all__) == {"PydanticJSONPlainPayloadConverter", "PydanticPayloadConverter", "pydantic_data_converter"}
