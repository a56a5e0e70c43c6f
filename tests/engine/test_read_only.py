"""A database this user cannot write (a read-only file, a read-only folder) is read, not refused:
``dlab workflow list/show/describe/result`` and the client's reads work; every write is one
line saying the database is read-only.

Tests run as root here, which ignores permission bits. So the probe runs in a process that has
root's privilege to bypass them dropped (``setpriv`` takes CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
and CAP_FOWNER out of its bounding set): it sees EACCES exactly as another user would, which
the probe checks before anything else. Run as a normal user, the probe runs as that user.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.cli.helpers import ROOT, write_library_runs

PROBE = Path(__file__).with_name("read_only_probe.py")
UNPRIVILEGED = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def _as_a_user_who_cannot_write(db: Path) -> dict[str, Any]:
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: permission bits cannot be made to apply")
        prefix = UNPRIVILEGED
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    env.pop("DLAB_DB", None)
    done = subprocess.run([*prefix, sys.executable, str(PROBE), str(db)], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
    if done.returncode != 0 and "setpriv" in done.stderr:
        pytest.skip(f"setpriv cannot drop capabilities here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("read-only") / "engine.db"
    asyncio.run(write_library_runs(path))
    return path


@pytest.fixture
def folder(template: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the database, closed cleanly (no -wal, no -shm), in a folder others can enter."""
    here = tmp_path / "runs"
    here.mkdir()
    shutil.copy(template, here / "engine.db")
    tmp_path.chmod(0o755)
    yield here
    here.chmod(0o755)  # so that pytest can clean up
    (here / "engine.db").chmod(0o644)


def _check(report: dict[str, Any]) -> None:
    for verb in ("list", "show -w hello-1", "show -w boom-1 -o json", "describe -w collect-1", "result -w hello-1"):
        assert report[verb]["code"] == 0 and report[verb]["err"] == "", (verb, report[verb])
    assert "hello-1" in report["list"]["out"] and "collect-1" in report["list"]["out"]
    assert '"Hello, Ada!"' in report["result -w hello-1"]["out"]
    assert "EVENT_TYPE_WORKFLOW_EXECUTION_FAILED" in report["show -w boom-1 -o json"]["out"]
    assert "Running" in report["describe -w collect-1"]["out"]
    for verb in ("signal -w collect-1 --name add --input 1", "terminate -w collect-1", "start --type Hello -t q -w new-1"):
        result = report[verb]
        assert result["code"] == 1 and result["out"] == "", (verb, result)
        assert result["err"].count("\n") == 1 and "is read-only for this user" in result["err"], (verb, result)
    library = report["library"]
    assert library["list"] == ["again-1", "again-1", "boom-1", "collect-1", "doomed-1", "hello-1"]
    assert library["history"] > 5 and library["describe"] == "RUNNING" and library["result"] == "Hello, Ada!"
    for write in ("start", "signal", "worker"):
        assert library[write].startswith("StoreReadOnlyError: ") and "is read-only for this user" in library[write], library


def test_a_read_only_file_in_a_read_only_folder(folder: Path) -> None:
    (folder / "engine.db").chmod(0o444)
    folder.chmod(0o555)
    report = _as_a_user_who_cannot_write(folder / "engine.db")
    assert not report["can_write_file"] and not report["can_write_folder"]  # the harness is honest
    _check(report)


def test_a_writable_file_in_a_read_only_folder(folder: Path) -> None:
    # SQLite cannot create the -wal and -shm files it needs, so the file is read-only in effect.
    folder.chmod(0o555)
    report = _as_a_user_who_cannot_write(folder / "engine.db")
    assert report["can_write_file"] and not report["can_write_folder"]
    _check(report)


def test_a_read_only_file_in_a_writable_folder(folder: Path) -> None:
    (folder / "engine.db").chmod(0o444)
    report = _as_a_user_who_cannot_write(folder / "engine.db")
    assert not report["can_write_file"] and report["can_write_folder"]
    _check(report)


def test_a_log_that_cannot_be_read_is_one_clear_error(tmp_path: Path) -> None:
    # A database copied while its writer was running: its -wal holds commits, and in a folder
    # this user cannot write there is no way to read them (no -shm file can be made).
    here = tmp_path / "copy"
    here.mkdir()
    tmp_path.chmod(0o755)
    script = (
        "import asyncio, shutil, sys\n"
        "from engine import Client\n"
        "async def main():\n"
        "    client = await Client.connect(sys.argv[1] + '/live.db')\n"
        "    await client.start_workflow('Hello', 'x', id='w', task_queue='q')\n"
        "    for suffix in ('', '-wal'):\n"
        "        shutil.copy(sys.argv[1] + '/live.db' + suffix, sys.argv[2] + '/engine.db' + suffix)\n"
        "    await client.close()\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path), str(here)], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert (here / "engine.db-wal").stat().st_size > 0
    here.chmod(0o555)
    try:
        prefix = UNPRIVILEGED if os.geteuid() == 0 else []
        reader = "import asyncio, sys\nfrom engine import Client\nasyncio.run(Client.connect(sys.argv[1]))\n"
        done = subprocess.run([*prefix, sys.executable, "-c", reader, str(here / "engine.db")], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    finally:
        here.chmod(0o755)
    assert done.returncode == 1
    assert "StoreReadOnlyError: The database" in done.stderr and "write-ahead log" in done.stderr and "copy it with its -wal file" in done.stderr
