"""Payload codecs at the boundary: the database holds only what the codec wrote (ciphertext),
clients and workers with the codec see the values, and histories decode for reading."""

from __future__ import annotations

import base64
import dataclasses
import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Sequence

import pytest

from engine import activity, workflow
from engine.codecs import CodecChain, CompressionCodec, EncryptionCodec
from engine.common import RetryPolicy
from engine.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    Payload,
    PayloadCodec,
    PayloadConverter,
    decode_history,
)
from engine.errors import ApplicationError, PayloadError, WorkflowFailureError
from engine.history import History
from engine.replay import Replayer
from engine.testing import WorkflowEnvironment
from engine.worker import Worker

SECRET = "4111-1111-SECRET-Zürich-7f3a9c"
KEY = bytes(range(32))


@dataclasses.dataclass
class Card:
    number: str
    holder: str


@activity.defn
async def charge(card: Card, amount: int) -> str:
    info = activity.info()
    if info.attempt == 1:
        activity.heartbeat(f"progress on {card.number}")
        raise ValueError(f"declined {card.number}")
    assert info.heartbeat_details == [f"progress on {card.number}"]  # decoded for the retry
    return f"receipt for {card.number}: {amount}"


@workflow.defn
class Checkout:
    def __init__(self) -> None:
        self.note: str | None = None

    @workflow.run
    async def run(self, card: Card) -> dict[str, str]:
        await workflow.wait_condition(lambda: self.note is not None)
        receipt = await workflow.execute_activity(
            charge, args=[card, 42], start_to_close_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1)),
        )
        return {"receipt": receipt, "note": self.note or ""}

    @workflow.signal
    def add_note(self, note: str) -> None:
        self.note = note

    @workflow.query
    def card(self, prefix: str) -> str:
        return prefix + self._card_hint

    _card_hint = ""


@workflow.defn
class Declines:
    @workflow.run
    async def run(self, card: Card) -> None:
        raise ApplicationError(f"card {card.number} refused", card.number, non_retryable=True)


def _forms(secret: str) -> list[bytes]:
    """The secret as UTF-8 and JSON-escaped, each in clear and as it looks inside base64
    (at the 3 alignments base64 can give it)."""
    forms = []
    for text in (secret.encode(), secret.encode("ascii", "backslashreplace").replace(b"\\xfc", b"\\u00fc")):
        forms.append(text)
        for shift in range(3):
            encoded = base64.b64encode(b"\0" * shift + text)
            forms.append(encoded[4 if shift else 0 : -4])
    return forms


def _found(data: bytes) -> list[bytes]:
    return [form for form in _forms(SECRET) if form in data]


def _database_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


@dataclasses.dataclass
class Run:
    result: dict[str, str]
    bytes_while_open: bytes
    history: History
    attempts: list[Any]


async def _run_checkout(path: Path, converter: DataConverter) -> Run:
    """Input, memo, signal, query, heartbeat, a failed attempt, a result and a failed run, all
    carrying the secret."""
    env = await WorkflowEnvironment.start_time_skipping(path=str(path), data_converter=converter)
    async with env, Worker(env.client, task_queue="q", workflows=[Checkout, Declines], activities=[charge]):
        card = Card(SECRET, "Zoë")
        handle = await env.client.start_workflow(Checkout.run, card, id="checkout", task_queue="q", memo={"card": SECRET})
        await handle.signal(Checkout.add_note, f"leave at door, {SECRET}")
        assert await handle.query(Checkout.card, SECRET) == SECRET
        result = await handle.result()
        with pytest.raises(WorkflowFailureError) as info:
            await env.client.execute_workflow(Declines.run, card, id="declines", task_queue="q")
        assert str(info.value.cause) == f"card {SECRET} refused"  # the client reads the message back
        assert info.value.cause.details == (SECRET,)  # type: ignore[attr-defined]
        return Run(result, _database_bytes(path), await handle.fetch_history(), await handle.activity_attempts())


async def test_an_encrypted_payload_never_appears_in_clear_in_the_database_file(tmp_path: Path) -> None:
    # Control: without a codec the secret is in the file (in the base64 of the payloads), so
    # the search finds it.
    plain = await _run_checkout(tmp_path / "plain.db", DataConverter.default)
    in_payloads = [form for form in _found(plain.bytes_while_open) if b"SECRET" not in form]
    assert in_payloads, "the secret is base64 inside the payloads of the plain database"

    converter = DataConverter(
        payload_codec=EncryptionCodec(KEY, key_id="k1"), failure_converter_class=DefaultFailureConverterWithEncodedAttributes
    )
    run = await _run_checkout(tmp_path / "secret.db", converter)
    assert run.result == {"receipt": f"receipt for {SECRET}: 42", "note": f"leave at door, {SECRET}"}
    for data in (run.bytes_while_open, _database_bytes(tmp_path / "secret.db")):  # WAL and checkpointed file
        assert len(data) > 10_000 and b"Checkout" in data  # the file was read; names stay in clear
        assert _found(data) == []

    encodings = {
        Payload.from_json(p).metadata["encoding"]
        for e in run.history.events
        for p in ((e.attributes.get("input") or e.attributes.get("result") or {}).get("payloads") or [])
    }
    assert encodings == {b"binary/encrypted"}
    assert run.attempts[0].failure["message"] == "Encoded failure"

    readable = await decode_history(run.history, converter)
    assert readable.events[0].attributes["input"] == {"payloads": [PayloadConverter.default.to_payload(Card(SECRET, "Zoë")).to_json()]}
    started = [e for e in readable.events if e.event_type == "ActivityTaskStarted"]
    assert started[0].attributes["lastFailure"]["message"] == f"declined {SECRET}"
    # Offline replay of an encrypted history: decode it first.
    Replayer(workflows=[Checkout], data_converter=converter).replay_workflow(readable)


@workflow.defn
class Vault:
    def __init__(self) -> None:
        self.secrets: list[str] = []

    @workflow.run
    async def run(self, card: Card) -> str:
        await workflow.wait_condition(lambda: len(self.secrets) == 2)
        return await workflow.execute_child_workflow(Seal.run, args=[card, self.secrets], id="vault-child")

    @workflow.update
    def store(self, secret: str) -> str:
        self.secrets.append(secret)
        return f"stored {secret}"

    @store.validator
    def check(self, secret: str) -> None:
        if "refuse" in secret:
            raise ValueError(f"refused {secret}")


@workflow.defn
class Seal:
    @workflow.run
    async def run(self, card: Card, secrets: list[str]) -> str:
        return f"sealed {card.number} with {len(secrets)} more"


async def test_children_and_updates_are_encrypted_too(tmp_path: Path) -> None:
    from engine.errors import WorkflowUpdateFailedError

    path = tmp_path / "vault.db"
    converter = DataConverter(
        payload_codec=EncryptionCodec(KEY), failure_converter_class=DefaultFailureConverterWithEncodedAttributes
    )
    env = await WorkflowEnvironment.start_time_skipping(path=str(path), data_converter=converter)
    async with env, Worker(env.client, task_queue="q", workflows=[Vault, Seal]):
        handle = await env.client.start_workflow(Vault.run, Card(SECRET, "Zoë"), id="vault", task_queue="q")
        assert await handle.execute_update(Vault.store, f"pin {SECRET}") == f"stored pin {SECRET}"
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(Vault.store, f"refuse {SECRET}")
        assert str(refused.value.cause) == f"refused refuse {SECRET}"
        assert await handle.execute_update(Vault.store, f"puk {SECRET}") == f"stored puk {SECRET}"
        assert await handle.result() == f"sealed {SECRET} with 2 more"
        data = _database_bytes(path)
    assert b"Seal" in data and _found(data) == []


@workflow.defn
class Keeper:
    def __init__(self) -> None:
        self.kept = ""

    @workflow.run
    async def run(self, secret: str) -> None:
        self.kept = secret
        await workflow.wait_condition(lambda: False)

    @workflow.query
    def reveal(self, prefix: str) -> str:
        return prefix + self.kept


async def test_a_query_between_processes_crosses_the_database_encrypted(tmp_path: Path) -> None:
    import asyncio

    from engine.client import Client

    # Two clients on one file stand for two processes: only the second runs the workflow's code.
    db = tmp_path / "engine.db"
    converter = DataConverter(payload_codec=EncryptionCodec(KEY))
    asking = await Client.connect(str(db), data_converter=converter)
    serving = await Client.connect(str(db), data_converter=converter)
    async with Worker(serving, task_queue="q", workflows=[Keeper]):
        handle = await asking.start_workflow(Keeper.run, SECRET, id="k", task_queue="q")
        for _ in range(200):
            if await handle.query(Keeper.reveal, "ask ") == f"ask {SECRET}":
                break
            await asyncio.sleep(0.02)
        assert await handle.query(Keeper.reveal, f"{SECRET}: ") == f"{SECRET}: {SECRET}"
        assert _found(_database_bytes(db)) == []  # the question and the answer were encrypted too
        await handle.terminate(reason="done")
    await asking.close()
    await serving.close()


@workflow.defn
class Echo:
    @workflow.run
    async def run(self, text: str) -> str:
        return text.upper()


async def test_a_client_without_the_key_cannot_read_and_says_why() -> None:
    env = await WorkflowEnvironment.start_time_skipping(data_converter=DataConverter(payload_codec=EncryptionCodec(KEY, key_id="k1")))
    async with env, Worker(env.client, task_queue="q", workflows=[Echo]):
        handle = await env.client.start_workflow(Echo.run, "hi", id="e", task_queue="q")
        assert await handle.result() == "HI"
        other = os.urandom(32)
        for converter, message in [
            (DataConverter(payload_codec=EncryptionCodec(other, key_id="k1")), "does not decrypt: the key is not the one"),
            (DataConverter(payload_codec=EncryptionCodec(other, key_id="k2")), r"encrypted with key 'k1', which this codec does not have"),
            (DataConverter.default, "Unknown payload encoding 'binary/encrypted'"),
        ]:
            env.client.data_converter = converter
            with pytest.raises(PayloadError, match=message):
                await handle.result()


async def test_a_worker_without_the_codec_fails_the_task_and_the_run_resumes_with_it() -> None:
    encrypted = DataConverter(payload_codec=EncryptionCodec(KEY))
    env = await WorkflowEnvironment.start_time_skipping(data_converter=encrypted)
    async with env:
        handle = await env.client.start_workflow(Echo.run, "later", id="e", task_queue="q")
        env.client.data_converter = DataConverter.default
        async with Worker(env.client, task_queue="q", workflows=[Echo]):
            failure = await _task_failure(handle)
        assert "Unknown payload encoding 'binary/encrypted'" in failure["message"]
        env.client.data_converter = encrypted
        async with Worker(env.client, task_queue="q", workflows=[Echo]):
            assert await handle.result() == "LATER"


async def _task_failure(handle: Any) -> dict[str, Any]:
    import asyncio

    for _ in range(500):
        for event in (await handle.fetch_history()).events:
            if event.event_type == "WorkflowTaskFailed":
                return dict(event.attributes["failure"])
        await asyncio.sleep(0.01)
    raise AssertionError("no workflow task failed")


async def test_runs_recorded_before_encryption_stay_readable() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with env:
        handle = await env.client.start_workflow(Echo.run, "old", id="e", task_queue="q")
        env.client.data_converter = DataConverter(payload_codec=EncryptionCodec(KEY))
        async with Worker(env.client, task_queue="q", workflows=[Echo]):
            assert await handle.result() == "OLD"
        history = await handle.fetch_history()
    encodings = [Payload.from_json(e.attributes[k]["payloads"][0]).metadata["encoding"] for e, k in ((history.events[0], "input"), (history.events[-1], "result"))]
    assert encodings == [b"json/plain", b"binary/encrypted"]


async def test_key_rotation_reads_old_payloads() -> None:
    old, new = EncryptionCodec(KEY, key_id="2025"), EncryptionCodec(os.urandom(32), key_id="2026", previous_keys={"2025": KEY})
    payloads = await old.encode([Payload({"encoding": b"json/plain"}, b'"x"')])
    assert await new.decode(payloads) == [Payload({"encoding": b"json/plain"}, b'"x"')]
    assert (await new.encode(payloads))[0].metadata["encryption-key-id"] == b"2026"


def test_bad_keys_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match=r"AES keys of 16, 24 or 32 bytes, but key 'default' is 5.*generate_key"):
        EncryptionCodec(b"short")
    assert "key" not in repr(EncryptionCodec(KEY, key_id="k")).replace("key_id", "")


async def test_envelope_interoperates_with_temporal_encryption_codecs() -> None:
    # Temporal's samples encrypt payload.SerializeToString() with AES-GCM, nonce first, and mark
    # the payload binary/encrypted with the key id: check both directions with their Payload type.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from temporalio.api.common.v1 import Payload as TheirPayload

    codec = EncryptionCodec(KEY, key_id="k1")
    inner = Payload({"encoding": b"json/plain"}, b'{"a":1}')
    (ours,) = await codec.encode([inner])
    assert ours.metadata == {"encoding": b"binary/encrypted", "encryption-key-id": b"k1"}
    theirs = TheirPayload.FromString(AESGCM(KEY).decrypt(ours.data[:12], ours.data[12:], None))
    assert dict(theirs.metadata) == inner.metadata and theirs.data == inner.data
    nonce = os.urandom(12)
    sealed = nonce + AESGCM(KEY).encrypt(nonce, TheirPayload(metadata={"encoding": b"json/plain"}, data=b"7").SerializeToString(), None)
    assert await codec.decode([Payload({"encoding": b"binary/encrypted", "encryption-key-id": b"k1"}, sealed)]) == [
        Payload({"encoding": b"json/plain"}, b"7")
    ]


async def test_tampered_ciphertext_is_detected() -> None:
    codec = EncryptionCodec(KEY)
    (payload,) = await codec.encode([Payload({"encoding": b"json/plain"}, b"1")])
    payload.data = payload.data[:-1] + bytes([payload.data[-1] ^ 1])
    with pytest.raises(PayloadError, match="does not decrypt"):
        await codec.decode([payload])


async def test_compression_and_a_chain() -> None:
    big = Payload({"encoding": b"json/plain"}, b'"' + b"ab" * 500 + b'"')
    small = Payload({"encoding": b"json/plain"}, b"1")
    compression = CompressionCodec()
    packed = await compression.encode([big, small])
    assert packed[0].metadata["encoding"] == b"binary/zlib" and len(packed[0].data) < 100
    assert packed[1] is small  # not worth compressing
    assert await compression.decode(packed) == [big, small]

    chain = CodecChain(CompressionCodec(), EncryptionCodec(KEY))
    sealed = await chain.encode([big])
    assert sealed[0].metadata["encoding"] == b"binary/encrypted" and len(sealed[0].data) < 150  # compressed, then encrypted
    assert await chain.decode(sealed) == [big]
    assert "key" not in repr(chain).replace("key_id", "")


class CountingCodec(PayloadCodec):
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.calls.append(("encode", len(payloads)))
        return [Payload({"encoding": b"test/wrapped"}, p.SerializeToString()) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.calls.append(("decode", len(payloads)))
        return [Payload.FromString(p.data) if p.metadata.get("encoding") == b"test/wrapped" else p for p in payloads]


@workflow.defn
class Patched:
    @workflow.run
    async def run(self, x: int) -> int:
        if workflow.patched("faster"):
            return x * 2
        return x


async def test_the_patch_marker_is_left_to_the_engine_as_temporal_core_does() -> None:
    codec = CountingCodec()
    env = await WorkflowEnvironment.start_time_skipping(data_converter=DataConverter(payload_codec=codec))
    async with env, Worker(env.client, task_queue="q", workflows=[Patched], max_cached_workflows=0):
        assert await env.client.execute_workflow(Patched.run, 21, id="p", task_queue="q") == 42
        history = await env.client.get_workflow_handle("p").fetch_history()
    marker = next(e for e in history.events if e.event_type == "MarkerRecorded")
    assert Payload.from_json(marker.attributes["details"]["patch-data"]["payloads"][0]).metadata["encoding"] == b"json/plain"
    assert Payload.from_json(history.events[0].attributes["input"]["payloads"][0]).metadata["encoding"] == b"test/wrapped"
    assert ("encode", 1) in codec.calls and ("decode", 1) in codec.calls


async def test_codec_failure_helpers_work_in_place() -> None:
    codec = CountingCodec()
    failure = DataConverter.default.failure_converter.to_failure(ApplicationError("x", 1, 2), PayloadConverter.default)
    original = dict(failure)
    await codec.encode_failure(failure)
    assert Payload.from_json(failure["applicationFailureInfo"]["details"]["payloads"][0]).metadata["encoding"] == b"test/wrapped"
    await codec.decode_failure(failure)
    assert failure == original


async def test_decode_history_without_a_codec_is_the_same_history() -> None:
    history = History("w", ())
    assert await decode_history(history, DataConverter.default) is history
