"""Databases the engine creates are owner-only (0600), with their -wal, -shm and -lock files,
unless ``Client.connect(file_mode=...)`` says otherwise; existing files keep their mode; the
``.durable/`` folder the notebooks and ``dlab`` create is 0700."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterator

import pytest

from engine import Client, Worker, workflow


@workflow.defn
class Hello:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"Hello, {name}!"


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most systems have (0022): files default to 0644, readable by everyone."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def _modes_while_open(path: Path, **connect: int) -> dict[str, int]:
    """Modes of the database and its companions while a client has written to it."""
    client = await Client.connect(str(path), **connect)
    try:
        async with Worker(client, task_queue="q", workflows=[Hello]):
            assert await client.execute_workflow(Hello.run, "Ada", id="w", task_queue="q") == "Hello, Ada!"
        return {suffix or "db": _mode(Path(f"{path}{suffix}")) for suffix in ("", "-wal", "-shm", "-lock")}
    finally:
        await client.close()


async def test_a_new_database_and_its_companions_are_owner_only(tmp_path: Path) -> None:
    modes = await _modes_while_open(tmp_path / "engine.db")
    assert modes == {"db": 0o600, "-wal": 0o600, "-shm": 0o600, "-lock": 0o600}


async def test_file_mode_opens_them_to_others_when_asked(tmp_path: Path) -> None:
    modes = await _modes_while_open(tmp_path / "shared.db", file_mode=0o640)
    assert modes == {"db": 0o640, "-wal": 0o640, "-shm": 0o640, "-lock": 0o640}


async def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    await (await Client.connect(str(path))).close()
    for leftover in ("-wal", "-shm", "-lock"):
        Path(f"{path}{leftover}").unlink(missing_ok=True)
    path.chmod(0o664)
    modes = await _modes_while_open(path)
    assert modes == {"db": 0o664, "-wal": 0o664, "-shm": 0o664, "-lock": 0o664}


@pytest.mark.parametrize("mode", [0o644 | 0o4000, 0o400, 0o1000, -1])
async def test_a_bad_file_mode_is_refused_clearly(tmp_path: Path, mode: int) -> None:
    with pytest.raises(ValueError, match=r"file_mode .* is not a database file mode.*owner.*e\.g\. file_mode=0o600"):
        await Client.connect(str(tmp_path / "x.db"), file_mode=mode)
    assert not (tmp_path / "x.db").exists()


async def test_the_notebooks_durable_folder_is_owner_only(tmp_path: Path) -> None:
    from kernel_ext._session import _open_store

    store = await _open_store(str(tmp_path / ".durable" / "engine.db"))
    await store.close()
    assert _mode(tmp_path / ".durable") == 0o700
    assert _mode(tmp_path / ".durable" / "engine.db") == 0o600


def test_dlab_creates_its_default_folder_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DLAB_DB", raising=False)
    assert main(["workflow", "start", "--type", "Hello", "-t", "q", "-w", "w1"]) == 0
    assert _mode(tmp_path / ".durable") == 0o700
    assert _mode(tmp_path / ".durable" / "engine.db") == 0o600
