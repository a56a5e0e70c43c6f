"""Runs the samples against the engine, in subprocesses with time limits (used by
test_samples.py; ``python tests/samples/_runner.py`` prints every outcome)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT.parent / "shared" / "reference" / "samples-python"  # not part of the project: tests skip without it
HERE = Path(__file__).resolve().parent
STARTER_TIME_LIMIT = float(os.environ.get("DLAB_SAMPLES_STARTER_TIMEOUT", "20"))

if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))
from tests.samples.samples import STARTERS, Starter  # noqa: E402


@dataclass(frozen=True)
class Outcome:
    passed: bool
    why: str  # the last lines of its output when it failed


def environment(db: str) -> dict[str, str]:
    paths = [str(ROOT), str(HERE), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "PYTHONDONTWRITEBYTECODE": "1",  # nothing written into ../shared
        "DLAB_DB": db,
        "PYTHONUNBUFFERED": "1",
    }


def run_tests(report: Path, ignore: Sequence[str] = ()) -> dict[str, dict[str, str]]:
    """The samples' own tests (but the files in ``ignore``) in one pytest process with our
    plugin; their outcomes by node id."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**environment(str(Path(tmp) / "unused.db")), "DLAB_SAMPLES_REPORT": str(report)}
        # Our own (empty) settings: the samples' pyproject configures pytest-asyncio and live logs.
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n")
        ignored = [f"--ignore={t}" for t in ignore]
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "dlab_samples_plugin", "--noconftest",
             "-c", str(ini), "--rootdir", str(SAMPLES), "--continue-on-collection-errors", *ignored, "tests"],
            cwd=SAMPLES, env=env, capture_output=True, text=True, timeout=600,
        )
    found = json.loads(report.read_text()) if report.exists() else {}
    # Node ids as listed in samples.py (pytest may name them from tests/ or from its parent).
    return {k if k.startswith("tests/") else f"tests/{k}": v for k, v in found.items()}


def run_starter(starter: Starter) -> Outcome:
    """The sample's programme with `python -m engine.run -m MODULE`; its worker beside it if it
    has its own. Passes when the programme exits 0 within the time limit; fails at once when
    either process says it used a temporalio name the engine lacks (`dlab run` says so)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = environment(str(Path(tmp) / "sample.db"))
        run = [sys.executable, "-m", "engine.run", "-m"]
        logs = {"main": Path(tmp) / "main.log", "worker": Path(tmp) / "worker.log"}
        processes: dict[str, subprocess.Popen[bytes]] = {}
        try:
            if starter.worker:
                processes["worker"] = _start([*run, starter.worker, *starter.worker_args], env, logs["worker"])
            processes["main"] = _start([*run, starter.main, *starter.args], env, logs["main"])
            limit = max(starter.time_limit or 0.0, STARTER_TIME_LIMIT)
            deadline = time.monotonic() + limit
            while True:
                if starter.until and re.search(starter.until, _read(logs)):
                    return Outcome(True, "")
                code = processes["main"].poll()
                if code is not None:
                    return Outcome(code == 0, "" if code == 0 else f"exit {code}: " + _tail(_read(logs)))
                missing = [line for line in _read(logs).splitlines() if MISSING_LINE in line]
                if missing:
                    return Outcome(False, _short(missing[0]))
                if time.monotonic() > deadline:
                    return Outcome(False, f"did not finish within {limit:g}s: " + _tail(_read(logs)))
                time.sleep(0.1)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)  # our own process group, started above
                process.wait()


MISSING_LINE = "is not supported by the engine yet"


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=SAMPLES, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _read(logs: dict[str, Path]) -> str:
    return "\n".join(p.read_text(errors="replace") for p in logs.values() if p.exists())


def _short(line: str) -> str:
    return line.replace("durable-lab: ", "").split(" (see ")[0]


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    unsupported = [line for line in lines if "not supported by durable-lab" in line]
    return (unsupported[-1].split(" See ")[0] if unsupported else " / ".join(lines[-2:]))[:300]


def run_starters(names: list[str], parallel: int = 4) -> dict[str, Outcome]:
    # The long ones first, so that the others run beside them rather than after.
    ordered = sorted(names, key=lambda n: -(STARTERS[n].time_limit or 0.0))
    with ThreadPoolExecutor(parallel) as pool:
        outcomes = dict(zip(ordered, pool.map(lambda n: run_starter(STARTERS[n]), ordered)))
    return {n: outcomes[n] for n in names}


if __name__ == "__main__":
    for name, outcome in run_starters(sys.argv[1:] or sorted(STARTERS)).items():
        print(f"{'PASS' if outcome.passed else 'FAIL'} {name}: {outcome.why}")
