"""The viewers and an encrypting data converter: decoded when the session has the codec,
shown as ``<encrypted>`` when it has not, never as the stored bytes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from engine import activity, workflow
from engine.codecs import EncryptionCodec
from engine.converter import DataConverter
from engine.errors import ApplicationError
from kernel_ext import display
from kernel_ext._session import Session, SessionError
from kernel_ext.live import LiveRunView

KEY = bytes(range(32))
ENCRYPTED = DataConverter(payload_codec=EncryptionCodec(KEY, key_id="lab"))  # failures encoded too, by default
SECRET = "Ada-Lovelace-7731"


@activity.defn
async def lookup(name: str) -> str:
    if activity.info().attempt == 1:
        raise ApplicationError(f"{name} is busy", name)
    return f"address of {name}"


@workflow.defn
class Letter:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(lookup, name, start_to_close_timeout=timedelta(seconds=5),
                                               retry_policy=_quick_retry())


def _quick_retry() -> Any:
    from engine.common import RetryPolicy

    return RetryPolicy(initial_interval=timedelta(milliseconds=10))


async def _run_letter(path: Path) -> Session:
    session = Session(str(path), "skip", ENCRYPTED)
    session.define([lookup, Letter])
    await session.start_worker("q")
    assert await session.execute_workflow("Letter", task_queue="q", workflow_id="letter", args=[SECRET]) == f"address of {SECRET}"
    return session


def _texts(view: Any) -> str:
    bundle = view._repr_mimebundle_()
    return bundle["text/plain"] + bundle["text/html"]


async def test_a_session_with_the_codec_shows_values_decoded(tmp_path: Path) -> None:
    session = await _run_letter(tmp_path / "lab.db")
    try:
        table = await session.show_workflow("letter", detailed=True)
        graph = await session.show_workflow("letter", output="graph")
        status = await session.status()
        stored = (await session.show_workflow("letter", output="json")).text()
    finally:
        await session.close()
    assert f'"{SECRET}"' in _texts(table) and f'"address of {SECRET}"' in _texts(table)
    assert f"address of {SECRET}" in _texts(graph)
    assert f"{SECRET} is busy" in _texts(graph)  # the failed attempt's message, decrypted
    assert "<encrypted>" not in _texts(table) + _texts(graph)
    assert "codec       EncryptionCodec(key_id='lab')" in status.text()
    assert SECRET not in stored and "YmluYXJ5L2VuY3J5cHRlZA==" in stored  # json is the stored form: binary/encrypted


async def test_a_session_without_the_codec_shows_encrypted(tmp_path: Path) -> None:
    await (await _run_letter(tmp_path / "lab.db")).close()
    session = Session(str(tmp_path / "lab.db"))
    try:
        table = await session.show_workflow("letter")
        detailed = await session.show_workflow("letter", detailed=True)
        graph = await session.show_workflow("letter", output="graph")
    finally:
        await session.close()
    for view in (table, detailed, graph):
        text = _texts(view)
        assert "<encrypted>" in text or "&lt;encrypted&gt;" in text
        assert SECRET not in text and "bytes" not in text
    # The failure message went through the codec too: shown as encrypted, not as temporalio's
    # "Encoded failure" placeholder.
    assert "attempt 1 failed: &lt;encrypted&gt;" in _texts(graph) or "attempt 1 failed: <encrypted>" in _texts(graph)
    assert "Encoded failure" not in _texts(graph)


async def test_the_wrong_key_is_a_session_error(tmp_path: Path) -> None:
    await (await _run_letter(tmp_path / "lab.db")).close()
    session = Session(str(tmp_path / "lab.db"), data_converter=DataConverter(payload_codec=EncryptionCodec(bytes(32), key_id="lab")))
    try:
        with pytest.raises(SessionError, match=r"does not decrypt.*%config DurableLab.data_converter"):
            await session.show_workflow("letter")
    finally:
        await session.close()


async def test_a_worker_process_is_refused_when_the_session_has_a_codec(tmp_path: Path) -> None:
    session = Session(str(tmp_path / "lab.db"), data_converter=ENCRYPTED)
    session.define([lookup, Letter])
    session.remember_source("@workflow.defn\nclass Letter: ...\n")
    try:
        with pytest.raises(SessionError, match="cannot use this session's data converter"):
            await session.start_worker("q", process=True)
    finally:
        await session.close()


async def test_the_live_view_decodes_with_the_clients_converter(tmp_path: Path) -> None:
    session = await _run_letter(tmp_path / "lab.db")
    try:
        assert session.client is not None
        view, closed = await LiveRunView(session.client.get_workflow_handle("letter")).render()
    finally:
        await session.close()
    assert closed and f"address of {SECRET}" in view.to_text()


def test_encrypted_payloads_in_an_imported_history_show_as_such() -> None:
    from engine.history import History, HistoryEvent
    from engine.converter import Payload
    from datetime import datetime, timezone

    sealed = Payload({"encoding": b"binary/encrypted", "encryption-key-id": b"k"}, b"\x00" * 40).to_json()
    zipped = Payload({"encoding": b"binary/zlib"}, b"\x01" * 9).to_json()
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    history = History("w", (
        HistoryEvent(1, "WorkflowExecutionStarted", t0, {"workflowType": {"name": "W"}, "input": {"payloads": [sealed, zipped]}}),
    ))
    text = display.EventTable(history).to_text()
    assert "W(<encrypted>, <binary/zlib: 9 bytes>)" in text
    assert "input: [<encrypted>, <binary/zlib: 9 bytes>]" in display.EventTable(history, detailed=True).to_text()


def test_config_sets_the_sessions_data_converter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell.instance()
    shell.config.pop("DurableLab", None)
    shell.run_cell("%load_ext kernel_ext")
    try:
        magics = shell.magics_manager.registry["DurableMagics"]
        shell.user_ns["converter"] = ENCRYPTED
        assert shell.run_cell("%config DurableLab.data_converter = converter").success
        assert magics.session.data_converter is ENCRYPTED
        assert shell.run_cell("%config DurableLab.data_converter = None").success
        assert magics.session.data_converter is DataConverter.default
        shell.user_ns["converter"] = "not one"
        shell.run_cell("%config DurableLab.data_converter = converter")  # traitlets refuses it (IPython logs why)
        assert magics.session.data_converter is DataConverter.default
    finally:
        shell.run_cell("%unload_ext kernel_ext")
        shell.config.pop("DurableLab", None)
