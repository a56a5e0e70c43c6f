"""With a payload codec, failures reach the database through it too: messages and stack traces
of activities, workflows and workflow tasks are ciphertext in the file and its WAL, error
types stay in clear (the engine's retry policy reads them, as Temporal's server does), and
the exported Temporal JSON decodes in temporalio with the same key."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Sequence

from engine import activity, workflow
from engine.codecs import EncryptionCodec
from engine.common import RetryPolicy
from engine.converter import (
    DataConverter,
    DefaultFailureConverter,
    DefaultFailureConverterWithEncodedAttributes,
    decode_history,
)
from engine.errors import ActivityError, ApplicationError, WorkflowFailureError
from engine.history import History
from engine.testing import WorkflowEnvironment
from engine.worker import Worker

KEY = bytes(range(32))

# Every value below must be absent from the encrypted database, in any form it could take.
SECRETS = {
    "input": "input-Olga-5521",
    "result": "result-Ivar-8812",
    "activity input": "act-input-Nils-0192",
    "activity result": "act-result-Sune-4410",
    "retried activity failure": "retry-msg-Kari-3371",
    "activity failure": "final-msg-Berit-9046",
    "workflow failure": "wf-msg-Astrid-6630",
    "task failure": "task-msg-Egil-2207",
    # Source lines appear only in stack traces.
    "activity stack trace": "trace-activity-q9x",
    "workflow stack trace": "trace-workflow-k3v",
    "task stack trace": "trace-task-m7z",
}

FLAKY_CALLS: list[int] = []


@activity.defn
async def flaky(name: str) -> str:
    FLAKY_CALLS.append(1)
    if len(FLAKY_CALLS) == 1:
        raise ValueError(f"{SECRETS['retried activity failure']} for {name}")  # trace-activity-q9x
    return f"{SECRETS['activity result']} for {name}"


@activity.defn
async def doomed(name: str) -> str:
    raise ApplicationError(SECRETS["activity failure"], type="Declined", non_retryable=True)


@workflow.defn
class Pays:
    @workflow.run
    async def run(self, name: str) -> str:
        options: dict[str, Any] = {
            "start_to_close_timeout": timedelta(seconds=5),
            "retry_policy": RetryPolicy(initial_interval=timedelta(milliseconds=10)),
        }
        first = await workflow.execute_activity(flaky, SECRETS["activity input"], **options)
        try:
            await workflow.execute_activity(doomed, name, **options)
        except ActivityError:
            pass
        return f"{SECRETS['result']} after {first}"


@workflow.defn
class Refuses:
    @workflow.run
    async def run(self, name: str) -> None:
        raise ApplicationError(SECRETS["workflow failure"], type="Refused")  # trace-workflow-k3v


@workflow.defn
class Buggy:
    @workflow.run
    async def run(self, name: str) -> None:
        raise RuntimeError(SECRETS["task failure"])  # trace-task-m7z


def _forms(secret: str) -> list[bytes]:
    """The text in clear, JSON-escaped, and inside base64 at its three alignments."""
    forms = []
    for text in {secret.encode(), json.dumps(secret).encode()[1:-1]}:
        forms.append(text)
        for shift in range(3):
            encoded = base64.b64encode(b"\0" * shift + text)
            forms.append(encoded[4 if shift else 0 : -4])
    return forms


def _leaks(data: bytes) -> list[str]:
    return sorted(name for name, secret in SECRETS.items() if any(form in data for form in _forms(secret)))


def _database_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


async def _wait_for_task_failure(handle: Any) -> None:
    for _ in range(500):
        if any(e.event_type == "WorkflowTaskFailed" for e in (await handle.fetch_history()).events):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no workflow task failed")


async def _run_all(path: Path, converter: DataConverter) -> tuple[bytes, History, History]:
    """A run with a retried and a failed activity, a failed run, a failed workflow task."""
    FLAKY_CALLS.clear()
    env = await WorkflowEnvironment.start_time_skipping(path=str(path), data_converter=converter)
    async with env, Worker(env.client, task_queue="q", workflows=[Pays, Refuses, Buggy], activities=[flaky, doomed]):
        client = env.client
        result = await client.execute_workflow(Pays.run, SECRETS["input"], id="pays", task_queue="q")
        assert result.startswith(SECRETS["result"])
        try:
            await client.execute_workflow(Refuses.run, SECRETS["input"], id="refuses", task_queue="q")
        except WorkflowFailureError as e:
            assert str(e.cause) == SECRETS["workflow failure"]  # the client with the codec reads it back
        else:
            raise AssertionError("the workflow should have failed")
        buggy = await client.start_workflow(Buggy.run, SECRETS["input"], id="buggy", task_queue="q")
        await _wait_for_task_failure(buggy)
        await buggy.terminate(reason="test over")
        data = _database_bytes(path)
        return data, await client.get_workflow_handle("pays").fetch_history(), await client.get_workflow_handle("refuses").fetch_history()


async def test_no_failure_message_or_stack_trace_is_in_clear_when_a_codec_is_set(tmp_path: Path) -> None:
    # Control: with failures explicitly left in clear every failure text is found, so the
    # search below would see them.
    plain_failures = DataConverter(payload_codec=EncryptionCodec(KEY), failure_converter_class=DefaultFailureConverter)
    data, _, _ = await _run_all(tmp_path / "clear.db", plain_failures)
    failure_texts = {k for k in SECRETS if "failure" in k or "trace" in k}
    assert failure_texts <= set(_leaks(data))

    # The default with a codec: nothing in clear, in the WAL while open nor in the file after.
    converter = DataConverter(payload_codec=EncryptionCodec(KEY, key_id="k1"))
    assert isinstance(converter.failure_converter, DefaultFailureConverterWithEncodedAttributes)
    path = tmp_path / "secret.db"
    data, pays, refuses = await _run_all(path, converter)
    assert len(data) > 10_000  # read while the clients were open: the WAL held most of it
    assert _leaks(data) == []
    assert _leaks(_database_bytes(path)) == []
    # What stays visible: ids, types (workflow, activity and error types), times; event types
    # are stored as numbers (engine._persistence.event_rows).
    for visible in (b"Pays", b"flaky", b"Declined", b"Refused", b"RuntimeError"):
        assert visible in data

    failed = refuses.events[-1].attributes["failure"]
    assert failed["message"] == "Encoded failure" and failed["stackTrace"] == ""
    assert failed["applicationFailureInfo"]["type"] == "Refused"
    readable = await decode_history(refuses, converter)
    restored = readable.events[-1].attributes["failure"]
    assert restored["message"] == SECRETS["workflow failure"] and SECRETS["workflow stack trace"] in restored["stackTrace"]
    readable_pays = await decode_history(pays, converter)
    messages = [e.attributes["failure"]["message"] for e in readable_pays.events if e.event_type == "ActivityTaskFailed"]
    assert messages == [SECRETS["activity failure"]]


def test_no_codec_means_failures_stay_as_they_were() -> None:
    assert type(DataConverter().failure_converter) is DefaultFailureConverter
    opted_out = DataConverter(payload_codec=EncryptionCodec(KEY), failure_converter_class=DefaultFailureConverter)
    assert type(opted_out.failure_converter) is DefaultFailureConverter


class TemporalAesCodec:
    """What a temporalio user would write (as in Temporal's encryption sample): AES-GCM over
    the serialized payload, nonce first. Built lazily so that temporalio is imported only here."""

    @staticmethod
    def make(key: bytes) -> Any:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from temporalio.api.common.v1 import Payload
        from temporalio.converter import PayloadCodec

        class Codec(PayloadCodec):
            async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
                out = []
                for p in payloads:
                    nonce = os.urandom(12)
                    data = nonce + AESGCM(key).encrypt(nonce, p.SerializeToString(), None)
                    out.append(Payload(metadata={"encoding": b"binary/encrypted", "encryption-key-id": b"k1"}, data=data))
                return out

            async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
                return [
                    Payload.FromString(AESGCM(key).decrypt(p.data[:12], p.data[12:], None))
                    if p.metadata.get("encoding") == b"binary/encrypted" else p
                    for p in payloads
                ]

        return Codec()


async def test_the_exported_history_keeps_ciphertext_and_temporalio_decodes_it(tmp_path: Path) -> None:
    from temporalio.client import WorkflowHistory
    from temporalio.converter import DataConverter as TheirConverter
    from temporalio.converter import DefaultFailureConverterWithEncodedAttributes as TheirFailures

    converter = DataConverter(payload_codec=EncryptionCodec(KEY, key_id="k1"))
    _, pays, refuses = await _run_all(tmp_path / "secret.db", converter)
    theirs = TheirConverter(payload_codec=TemporalAesCodec.make(KEY), failure_converter_class=TheirFailures)
    for history in (pays, refuses):
        text = json.dumps(history.to_json_dict())
        assert _leaks(text.encode()) == []  # exported as stored: encrypted
    their_refuses = WorkflowHistory.from_json("refuses", json.dumps(refuses.to_json_dict()))
    started, failed = their_refuses.events[0], their_refuses.events[-1]
    assert await theirs.decode(started.workflow_execution_started_event_attributes.input.payloads, [str]) == [SECRETS["input"]]
    error = await theirs.decode_failure(failed.workflow_execution_failed_event_attributes.failure)
    assert type(error).__name__ == "ApplicationError"
    assert (error.message, error.type) == (SECRETS["workflow failure"], "Refused")  # type: ignore[attr-defined]
    their_pays = WorkflowHistory.from_json("pays", json.dumps(pays.to_json_dict()))
    failed_activity = next(e for e in their_pays.events if e.HasField("activity_task_failed_event_attributes"))
    cause = await theirs.decode_failure(failed_activity.activity_task_failed_event_attributes.failure)
    assert cause.message == SECRETS["activity failure"]  # type: ignore[attr-defined]
