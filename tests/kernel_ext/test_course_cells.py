"""A course's activity class and workflow pasted into %%activity / %%workflow cells
(issue 11, items 12 and 14): activities as methods of an instance holding a session, the
workflow importing them by module name."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from tests.kernel_ext.test_magics import loaded_shell, run, usage_error


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)
    yield from loaded_shell(after=("%config DurableLab.time_mode = 'skip'",))
    for name in ("course_activities_cell", "course_workflow_cell", "course_pkg", "course_pkg.acts"):
        sys.modules.pop(name, None)


ACTIVITIES = '''%%activity --module course_activities_cell
from dataclasses import dataclass

from engine import activity


@dataclass
class TranslationInput:
    term: str
    language_code: str


class FakeSession:
    def __init__(self, table):
        self.table = table
        self.calls = []

    async def get(self, term, lang):
        self.calls.append((term, lang))
        return self.table[(term, lang)]


class TranslationActivities:
    def __init__(self, session):
        self.session = session

    @activity.defn
    async def translate_term(self, input: TranslationInput) -> str:
        activity.logger.info("translating %s", input.term)
        return await self.session.get(input.term, input.language_code)


session = FakeSession({("hello", "fr"): "bonjour"})
acts = TranslationActivities(session)
'''

WORKFLOW = '''%%workflow --module course_workflow_cell
from datetime import timedelta

from engine import workflow

with workflow.unsafe.imports_passed_through():
    from course_activities_cell import TranslationActivities, TranslationInput


@workflow.defn
class TranslationWorkflow:
    @workflow.run
    async def run(self, name: str, language_code: str) -> str:
        hello = await workflow.execute_activity_method(
            TranslationActivities.translate_term,
            TranslationInput("hello", language_code),
            start_to_close_timeout=timedelta(seconds=5),
        )
        return f"{hello}, {name}"
'''


def test_a_course_activity_class_and_workflow_run_from_cells(capsys: pytest.CaptureFixture[str], shell: InteractiveShell) -> None:
    run(shell, ACTIVITIES)
    assert "translate_term" in capsys.readouterr().out
    run(shell, WORKFLOW)
    run(shell, "%worker start --task-queue q")
    result = run(shell, "%workflow execute --type TranslationWorkflow -t q -i '\"Ana\"' -i '\"fr\"'")
    assert result == "bonjour, Ana"
    assert run(shell, "session.calls") == [("hello", "fr")]
    # The cells are importable as the modules they name, as files would be.
    assert run(shell, "import course_workflow_cell; course_workflow_cell.TranslationWorkflow is TranslationWorkflow")
    assert run(shell, "from course_activities_cell import acts as imported; imported is acts")


def test_module_option_errors_are_one_line(shell: InteractiveShell) -> None:
    assert "would hide the imported module 'json'" in usage_error(shell, "%%activity --module json\nx = 1")
    assert "dotted Python identifiers" in usage_error(shell, "%%activity --module 9lives\nx = 1")
    assert "takes only --module NAME" in usage_error(shell, "%%workflow --modules x\nx = 1")
    assert "usage: %%activity [--module NAME]" in usage_error(shell, "%%activity --module\nx = 1")


def test_a_dotted_module_name_makes_its_package(shell: InteractiveShell) -> None:
    run(shell, ACTIVITIES.replace("course_activities_cell", "course_pkg.acts"))
    assert run(shell, "from course_pkg.acts import TranslationActivities as T; T is TranslationActivities")


def test_module_option_is_in_the_help(shell: InteractiveShell) -> None:
    doc = shell.magics_manager.magics["cell"]["activity"].__doc__
    assert "--module NAME" in doc and "acts = TranslationActivities(session)" in doc


def test_module_cells_import_by_name_in_a_worker_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for shell in loaded_shell():  # real time and a database file: what a worker process needs
        try:
            run(shell, ACTIVITIES)
            run(shell, WORKFLOW)
            worker = run(shell, "%worker start --process --task-queue q")
            result = run(shell, "%workflow execute --type TranslationWorkflow -t q -i '\"Bo\"' -i '\"fr\"'")
            assert result == "bonjour, Bo"
            assert run(shell, "session.calls") == []  # the activity ran in the process, not here
            run(shell, f"%worker kill {worker.name}")
        finally:
            for name in ("course_activities_cell", "course_workflow_cell"):
                sys.modules.pop(name, None)
