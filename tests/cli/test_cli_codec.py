"""``dlab --codec MODULE:FACTORY`` (or ``DLAB_CODEC``) reads and writes an encrypted database."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Callable

import pytest

from engine import Client, History, Worker
from tests.cli import app, codec_app
from tests.cli.helpers import QUEUE, Result

Dlab = Callable[..., Result]
SECRET = "Grete-Waitz-4471"


@pytest.fixture(scope="module")
def encrypted_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-codec") / "secret.db"

    async def write() -> None:
        client = await Client.connect(str(path), data_converter=codec_app.make_converter())
        try:
            async with Worker(client, task_queue=QUEUE, workflows=[app.Hello, app.Boom], activities=[app.greet]):
                assert await client.execute_workflow(app.Hello.run, SECRET, id="hello-1", task_queue=QUEUE) == f"Hello, {SECRET}!"
                with pytest.raises(Exception):
                    await client.execute_workflow(app.Boom.run, SECRET, id="boom-1", task_queue=QUEUE)
        finally:
            await client.close()

    asyncio.run(write())
    assert SECRET.encode() not in path.read_bytes()
    return path


@pytest.fixture
def secret_db(encrypted_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DLAB_CODEC", raising=False)
    path = tmp_path / "secret.db"
    path.write_bytes(encrypted_template.read_bytes())
    return path


CODEC = "tests.cli.codec_app:make_codec"


def test_show_result_and_describe_decode_with_the_codec(dlab: Dlab, secret_db: Path) -> None:
    shown = dlab("workflow", "show", "--db", str(secret_db), "-w", "hello-1", "--detailed", "--codec", CODEC)
    assert shown.code == 0 and shown.err == ""
    assert f'input[0]: "{SECRET}"' in shown.out and f'"Hello, {SECRET}!"' in shown.out
    result = dlab("workflow", "result", "--db", str(secret_db), "-w", "hello-1", "--codec", CODEC)
    assert result.code == 0 and f'"Hello, {SECRET}!"' in result.out
    as_json = dlab("workflow", "result", "--db", str(secret_db), "-w", "hello-1", "--codec", CODEC, "-o", "json")
    assert json.loads(as_json.out)["result"] == f"Hello, {SECRET}!"
    described = dlab("workflow", "describe", "--db", str(secret_db), "-w", "boom-1", "--codec", CODEC)
    assert described.code == 0 and f"boom: {SECRET} (Boom)" in described.out
    failed = dlab("workflow", "result", "--db", str(secret_db), "-w", "boom-1", "--codec", "tests.cli.codec_app:make_converter")
    assert failed.code == 1 and failed.err == f"Error: workflow failed: boom: {SECRET} (Boom)\n"


def test_the_exported_json_stays_encrypted_and_imports_back(dlab: Dlab, secret_db: Path) -> None:
    shown = dlab("workflow", "show", "--db", str(secret_db), "-w", "boom-1", "-o", "json", "--codec", CODEC)
    assert shown.code == 0 and SECRET not in shown.out and "Encoded failure" in shown.out

    async def stored() -> History:
        client = await Client.connect(str(secret_db))
        try:
            return await client.get_workflow_handle("boom-1").fetch_history()
        finally:
            await client.close()

    # The export leaves zero values out (as Temporal's does), so compare exports, not objects.
    assert History.from_json("boom-1", shown.out).to_json() == asyncio.run(stored()).to_json()


def test_the_codec_from_the_environment(dlab: Dlab, secret_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLAB_CODEC", CODEC)
    result = dlab("workflow", "result", "--db", str(secret_db), "-w", "hello-1")
    assert result.code == 0 and f'"Hello, {SECRET}!"' in result.out


def test_a_started_run_is_encrypted_with_the_codec(dlab: Dlab, secret_db: Path) -> None:
    started = dlab("workflow", "start", "--db", str(secret_db), "--type", "Hello", "-t", QUEUE, "-w", "new-1", "--input", '"Zzyzx-Road-1"', "--codec", CODEC)
    assert started.code == 0
    assert b"Zzyzx" not in secret_db.read_bytes()  # dlab closed it: everything is in the file
    shown = dlab("workflow", "show", "--db", str(secret_db), "-w", "new-1", "--detailed", "--codec", CODEC)
    assert 'input[0]: "Zzyzx-Road-1"' in shown.out


def test_without_the_codec_result_is_an_error_and_show_says_encrypted(dlab: Dlab, secret_db: Path) -> None:
    result = dlab("workflow", "result", "--db", str(secret_db), "-w", "hello-1")
    assert result.code == 1
    assert result.err.count("\n") == 1 and result.err.startswith("Error: ")
    assert "encrypted" in result.err and "--codec MODULE:FACTORY" in result.err and "DLAB_CODEC" in result.err
    for verb in ("show", "describe"):
        shown = dlab("workflow", verb, "--db", str(secret_db), "-w", "boom-1", "--detailed" if verb == "show" else "-o", *(["text"] if verb == "describe" else []))
        assert shown.code == 0 and SECRET not in shown.out
        assert "<encrypted>" in shown.out and "Encoded failure" not in shown.out
        assert "encrypted" in shown.err and "--codec" in shown.err and shown.err.count("\n") == 1


def test_a_wrong_key_is_one_line(dlab: Dlab, secret_db: Path) -> None:
    result = dlab("workflow", "result", "--db", str(secret_db), "-w", "hello-1", "--codec", "tests.cli.codec_app:wrong_key")
    assert result.code == 1 and result.err.count("\n") == 1 and "does not decrypt" in result.err


@pytest.mark.parametrize(
    "spec, message",
    [
        ("tests.cli.codec_app", r"--codec 'tests.cli.codec_app' is not MODULE:FACTORY"),
        ("tests.cli.no_such_module:make", r"cannot import module 'tests.cli.no_such_module'"),
        ("tests.cli.codec_app:nope", r"module 'tests.cli.codec_app' has no 'nope' \(it has: broken, make_codec, make_converter, not_a_codec, wrong_key\)"),
        ("tests.cli.codec_app:broken", r"tests.cli.codec_app:broken\(\) raised RuntimeError: the key store is unreachable"),
        ("tests.cli.codec_app:not_a_codec", r"tests.cli.codec_app:not_a_codec\(\) returned int, not a PayloadCodec or a DataConverter"),
    ],
)
def test_a_bad_codec_spec_is_one_line(dlab: Dlab, secret_db: Path, spec: str, message: str) -> None:
    result = dlab("workflow", "show", "--db", str(secret_db), "-w", "hello-1", "--codec", spec)
    assert result.code == 2 and result.out == ""
    assert result.err.count("\n") == 1 and re.search(message, result.err), result.err


def test_the_worker_takes_the_codec_too(dlab: Dlab) -> None:
    # Every command has the option (the worker encodes what it writes with it).
    from engine.cli import build_parser

    args = build_parser().parse_args(["worker", "--task-queue", "q", "--module", "m", "--codec", CODEC])
    assert args.codec == CODEC
