"""A database written by the library, copied for each test, and a way to run ``dlab`` in-process."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Callable

import pytest

from engine.cli import main
from tests.cli.helpers import ROOT, Result, write_library_runs


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-template") / "engine.db"
    asyncio.run(write_library_runs(path))
    return path


@pytest.fixture
def db(template_db: Path, tmp_path: Path) -> Path:
    """A fresh copy of the library-written database (the client closed it: no WAL left)."""
    path = tmp_path / "engine.db"
    for suffix in ("", "-wal"):
        if Path(str(template_db) + suffix).exists():
            shutil.copy(str(template_db) + suffix, str(path) + suffix)
    return path


@pytest.fixture
def dlab(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """``dlab(*argv)`` runs the CLI in this process and returns its exit code and output."""
    monkeypatch.delenv("DLAB_DB", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.chdir(ROOT)  # --module tests.cli.app resolves from the project root

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
