"""temporalio's DataConverter (payload converter, payload codec) given to our Client does
the encoding and decoding (issue 11, item 3), tried with the converters of Temporal's own
samples; ``Client.config()`` gives a client's arguments back, as temporalio's."""

from __future__ import annotations

import dataclasses
import importlib
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from engine import activity, workflow
from engine.client import Client
from engine.errors import WorkflowFailureError
from engine.worker import Worker

temporalio_converter = pytest.importorskip("temporalio.converter")

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "samples-python"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"Temporal's samples are not at {SAMPLES} (../shared is absent)")


def sample_module(name: str) -> Any:
    if str(SAMPLES) not in sys.path:
        sys.path.insert(0, str(SAMPLES))
    return importlib.import_module(name)


def greet_workflow(shared: Any) -> Any:
    # Typed with the sample's classes: its converter checks the type hints it is given.
    GreetingInput, GreetingOutput = shared.GreetingInput, shared.GreetingOutput

    @workflow.defn(name="Greet", sandboxed=False)
    class Greet:
        @workflow.run
        async def run(self, arg: GreetingInput) -> GreetingOutput:
            return GreetingOutput(f"Hello, {arg.name}")

    return Greet


@activity.defn
async def shout(text: str) -> str:
    if text == "fail":
        raise RuntimeError("secret failure text")
    return text.upper()


@workflow.defn(sandboxed=False)
class Shout:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(shout, text, start_to_close_timeout=timedelta(seconds=5))


async def _stored_payload_texts(client: Client, workflow_id: str) -> str:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return repr([e.attributes for e in history.events])


@needs_samples
async def test_samples_custom_payload_converter_through_client_config() -> None:
    shared = sample_module("custom_converter.shared")
    first = await Client.connect(":memory:")
    config = first.config()
    config["data_converter"] = shared.greeting_data_converter  # the sample's own test does this
    client = Client(**config)
    Greet = greet_workflow(shared)
    async with Worker(client, task_queue="q", workflows=[Greet]):
        handle = await client.start_workflow(Greet.run, shared.GreetingInput("Temporal"), id="greet", task_queue="q")
        result = await handle.result()
    assert isinstance(result, shared.GreetingOutput) and result.result == "Hello, Temporal"
    history = await handle.fetch_history()
    started = history.events[0].attributes["input"]["payloads"][0]
    from engine.converter import Payload

    payload = Payload.from_json(started)
    assert payload.metadata["encoding"] == b"text/my-greeting-encoding" and payload.data == b"Temporal"
    await client.close()
    assert not first.store._closed, "a client made from config() must not close the database it shares"
    await first.close()


@needs_samples
async def test_samples_encryption_codec_encrypts_what_the_store_holds(tmp_path: Path) -> None:
    codec = sample_module("encryption.codec")
    converter = dataclasses.replace(temporalio_converter.default(), payload_codec=codec.EncryptionCodec())
    client = await Client.connect(str(tmp_path / "e.db"), data_converter=converter)
    async with Worker(client, task_queue="q", workflows=[Shout], activities=[shout]):
        assert await client.execute_workflow(Shout.run, "plaintext words", id="enc", task_queue="q") == "PLAINTEXT WORDS"
    stored = await _stored_payload_texts(client, "enc")
    assert "cGxhaW50ZXh0" not in stored  # base64 of "plaintext": only ciphertext is stored
    assert "YmluYXJ5L2VuY3J5cHRlZA" in stored  # base64 of "binary/encrypted", the sample's encoding
    assert client.config()["data_converter"] is converter
    # A client without the codec cannot read the result; one with it can.
    plain = Client(**{**client.config(), "data_converter": temporalio_converter.default()})
    with pytest.raises(Exception):
        await plain.get_workflow_handle("enc").result()
    assert await Client(**client.config()).get_workflow_handle("enc").result() == "PLAINTEXT WORDS"
    await client.close()


@needs_samples
async def test_encryption_codec_keeps_failure_text_in_clear_as_temporalio_default() -> None:
    codec = sample_module("encryption.codec")
    converter = dataclasses.replace(temporalio_converter.default(), payload_codec=codec.EncryptionCodec())
    async with await Client.connect(":memory:", data_converter=converter) as client:
        async with Worker(client, task_queue="q", workflows=[Shout], activities=[shout]):
            handle = await client.start_workflow(Shout.run, "fail", id="f", task_queue="q", execution_timeout=timedelta(seconds=30))
            # The activity retries for ever; its last failure is on the pending attempt.
            for _ in range(200):
                attempts = await handle.activity_attempts()
                if attempts:
                    break
                import asyncio

                await asyncio.sleep(0.02)
            await handle.terminate()
        assert attempts and "secret failure text" in repr(attempts[0].failure)
        with pytest.raises(WorkflowFailureError):
            await handle.result()


def test_pydantic_converter_or_why_not() -> None:
    pytest.importorskip("pydantic", reason="pydantic is not installed here (temporalio.contrib.pydantic needs it)")
    from temporalio.contrib.pydantic import pydantic_data_converter

    from engine._frontend.temporalio_converter import adapt

    adapted = adapt(pydantic_data_converter)
    assert adapted.payload_converter.from_payloads(adapted.payload_converter.to_payloads([{"a": 1}])) == [{"a": 1}]


async def test_a_wrong_data_converter_is_a_one_line_error() -> None:
    with pytest.raises(TypeError, match=r"^Client.connect: data_converter must be an engine.converter.DataConverter or a temporalio.converter.DataConverter, not dict\.$"):
        await Client.connect(":memory:", data_converter={"codec": 1})


async def test_temporalio_default_converter_round_trips_dataclasses() -> None:
    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    async with await Client.connect(":memory:", data_converter=temporalio_converter.default()) as client:
        payloads = await client.data_converter.encode([Point(1, 2)])
        assert payloads[0].metadata["encoding"] == b"json/plain"
        assert await client.data_converter.decode(payloads, [Point]) == [Point(1, 2)]
