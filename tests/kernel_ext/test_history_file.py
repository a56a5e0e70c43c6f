"""``%workflow show --file``: histories recorded on a real Temporal server open in our views.

``tests/histories/*.json`` were downloaded from a Temporal 1.32 dev server (the format of
``temporal workflow show -o json``); the Web UI wraps the same document as ``{"history": ...}``.
tests/differential/test_histories_both_ways.py does the same with the CLI's own download.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from engine.history import load_history
from kernel_ext import display
from kernel_ext._session import JsonDocument
from tests.kernel_ext.test_magics import loaded_shell, run, usage_error

REAL = Path(__file__).resolve().parents[1] / "histories"


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)
    yield from loaded_shell()


@pytest.fixture
def web_ui_download(tmp_path: Path) -> Path:
    path = tmp_path / "fixture-saga.json"
    path.write_text(json.dumps({"history": json.loads((REAL / "saga.json").read_text())}))
    return path


def test_a_real_servers_history_shows_as_a_table_graph_and_saga(shell: InteractiveShell) -> None:
    path = REAL / "saga.json"
    events = load_history(path).events
    table = run(shell, f"%workflow show --file {path}")
    assert isinstance(table, display.EventTable) and len(table.rows()) == len(events)
    assert "ActivityTaskFailed" in table.to_text()
    detailed = run(shell, f"%workflow show -f {path} --detailed")
    assert "activityType" in detailed.to_text()
    graph = run(shell, f"%workflow show --file {path} --output graph")
    assert isinstance(graph, display.RunView) and graph.title == "saga (SagaWorkflow), from saga.json"
    assert "undo" in graph.dot and "no cars left" in graph.dot
    saga = run(shell, f"%workflow show --file {path} -o saga")
    assert isinstance(saga, display.SagaView)
    document = run(shell, f"%workflow show --file {path} -o json")
    assert isinstance(document, JsonDocument) and len(document.data["events"]) == len(events)


def test_the_web_uis_download_opens_the_same(shell: InteractiveShell, web_ui_download: Path) -> None:
    plain = run(shell, f"%workflow show --file {REAL / 'saga.json'}").to_text()
    wrapped = run(shell, f"%workflow show --file {web_ui_download}").to_text()
    assert wrapped == plain


def test_our_json_output_opens_again(shell: InteractiveShell, tmp_path: Path) -> None:
    document = run(shell, f"%workflow show --file {REAL / 'child.json'} -o json")
    again = tmp_path / "again.json"
    again.write_text(document.text())
    assert load_history(again).events == load_history(REAL / "child.json").events


def test_bad_use_says_what_to_do(shell: InteractiveShell, tmp_path: Path) -> None:
    assert "needs --workflow-id ID (a run here) or --file PATH" in usage_error(shell, "%workflow show")
    assert "No history file" in usage_error(shell, f"%workflow show --file {tmp_path / 'nope.json'}")
    assert "with --file use table, json, graph, saga" in usage_error(shell, f"%workflow show --file {REAL / 'saga.json'} -o chain")
    broken = tmp_path / "broken.json"
    broken.write_text('{"events": []}')
    assert "history is empty" in usage_error(shell, f"%workflow show --file {broken}")
