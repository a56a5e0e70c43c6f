"""Histories cross both ways: Temporal's downloads open in our views, our JSON in Temporal's tools.

* ``temporal workflow show -o json`` (the CLI's download) and the Web UI's ``{"history": ...}``
  form of the same runs open with ``engine.history.load_history`` and in ``%workflow show --file``'s
  views, event for event the history temporalio's client fetched.
* ``dlab workflow show --output json`` of the engine's runs is read by Temporal's own CLI
  (``temporal workflow fix-history-json`` parses a history file with Temporal's protobuf
  definitions and writes it back); temporalio's Replayer replays them (test_differential.py).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.history import History, load_history
from kernel_ext import display
from kernel_ext._history_file import show_history_file
from tests.differential.conftest import DOWNLOADED, ROOT, Sides


def _fetched(sides: Sides, workflow_id: str) -> History:
    """The last run of ``workflow_id`` as temporalio's client fetched it from the server."""
    for record in sides.temporal.values():
        runs = [r for r in record["histories"] if r["workflow_id"] == workflow_id]
        if runs:
            return History.from_json(workflow_id, runs[-1]["history"])
    raise AssertionError(f"no scenario fetched {workflow_id}")


def _shape(history: History) -> list[tuple[int, str]]:
    return [(e.event_id, e.event_type) for e in history.events]


@pytest.mark.parametrize("workflow_id", DOWNLOADED)
def test_the_clis_download_opens_in_our_views(sides: Sides, workflow_id: str, tmp_path: Path) -> None:
    path = sides.downloads.get(workflow_id)
    assert path is not None, sides.logs.get(f"download {workflow_id}")
    history = load_history(path)
    assert history.workflow_id == workflow_id
    assert history.events == _fetched(sides, workflow_id).events
    web_ui = tmp_path / path.name
    web_ui.write_text(json.dumps({"history": json.loads(path.read_text(encoding="utf-8"))}), encoding="utf-8")
    assert load_history(web_ui).events == history.events

    table = asyncio.run(show_history_file(str(web_ui)))
    assert isinstance(table, display.EventTable) and len(table.rows()) == len(history.events)
    graph = asyncio.run(show_history_file(str(path), output="graph"))
    assert isinstance(graph, display.RunView) and graph.title.startswith(f"{workflow_id} (")
    activities = {str(e.attributes["activityType"]["name"]) for e in history.events if e.event_type == "ActivityTaskScheduled"}
    assert all(name in graph.dot for name in activities)


def test_the_saga_download_shows_as_a_saga(sides: Sides) -> None:
    saga = asyncio.run(show_history_file(str(sides.downloads["diff-saga"]), output="saga"))
    assert isinstance(saga, display.SagaView)
    text = saga.to_text()
    assert "no seats left" in text and "undo" in text


@pytest.mark.parametrize("scenario", ["saga", "children", "continue_as_new", "activity_timeouts", "updates"])
def test_our_json_opens_in_temporals_cli(sides: Sides, scenario: str, tmp_path: Path) -> None:
    workflow_id = sides.engine[scenario]["histories"][0]["workflow_id"]
    ours = tmp_path / f"{workflow_id}.json"
    shown = subprocess.run(
        [sys.executable, "-m", "engine.cli", "workflow", "show", "--db", str(sides.base / "engine.db"), "-w", workflow_id,
         "--output", "json"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    ours.write_text(shown.stdout, encoding="utf-8")
    theirs = tmp_path / "reserialized.json"
    fixed = subprocess.run(
        [sides.temporal_binary, "workflow", "fix-history-json", "--source", str(ours), "--target", str(theirs)],
        capture_output=True, text=True, timeout=60,
    )
    assert fixed.returncode == 0, f"Temporal's CLI cannot read our history: {fixed.stderr}"
    # What Temporal's protobuf definitions read is what we wrote: nothing dropped or renamed.
    assert json.loads(theirs.read_text(encoding="utf-8")) == json.loads(shown.stdout)
    assert _shape(load_history(theirs)) == _shape(load_history(ours))
