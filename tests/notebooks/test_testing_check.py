"""Lesson 17's check runs the learner's tests with pytest: each run must see the same files and
nothing else, whatever runs beside it.

The check once said "Well done" to a suite without a replay test: under load, another run of
the notebook in the same folder rewrote ``.durable/lesson-17/test_billing.py`` between the run
against today's code and the runs against the mutants, which the check copied from the lesson
folder one after another. The check now reads the lesson once and writes each run's folder from
that one reading.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from notebooks.checks import testing

ONE_TEST = "def test_one():\n    pass\n"
BILLING = "".join(old for old, _ in testing.MUTANTS.values())  # a billing.py every mutant applies to


def _lesson(folder: Path, tests: str) -> Path:
    folder.mkdir()
    texts = {"billing.py": BILLING, "conftest.py": "", "subscription_history.json": "{}", "test_billing.py": tests}
    for name, text in texts.items():
        (folder / name).write_text(text)
    return folder


def test_every_suite_runs_the_lesson_as_it_was_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lesson = _lesson(tmp_path / "lesson-17", ONE_TEST)
    seen: dict[str, str] = {}

    async def fake_pytest(folder: Path) -> testing.Outcome:
        seen[folder.name] = (folder / "test_billing.py").read_text()
        # Another run of the notebook writes its own answer into the lesson folder meanwhile.
        (lesson / "test_billing.py").write_text("def test_one():\n    pass\n\n\ndef test_two():\n    pass\n")
        return (0, "1 passed") if folder.name == "today" else (1, "1 failed")

    monkeypatch.setattr(testing, "_pytest", fake_pytest)
    today, mutants = asyncio.run(testing.run_suites(testing.read_lesson(lesson)))
    assert today == (0, "1 passed") and set(mutants) == set(testing.MUTANTS)
    assert set(seen) == {"today", "bills-a-month-too-few", "sleeps-before-it-charges"}
    assert set(seen.values()) == {ONE_TEST}, "a run saw a test file that the check did not read"


def test_a_missing_file_is_a_not_yet(tmp_path: Path) -> None:
    lesson = _lesson(tmp_path / "lesson-17", ONE_TEST)
    (lesson / "conftest.py").unlink()
    with pytest.raises(testing.NotYet, match="conftest.py missing"):
        testing.read_lesson(lesson)


def test_a_run_reads_nothing_outside_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files around the run's folder (an ini file, a conftest.py, a leftover test) and the
    PYTEST_ADDOPTS of a suite that runs the notebook change nothing."""
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --collect-only\n")
    (tmp_path / "conftest.py").write_text("raise RuntimeError('a conftest.py above the folder was read')\n")
    monkeypatch.setenv("PYTEST_ADDOPTS", "--collect-only")
    folder = testing._write(tmp_path / "today", testing.read_lesson(_lesson(tmp_path / "lesson", ONE_TEST)), BILLING)
    (folder / "test_leftover.py").write_text("def test_from_another_answer():\n    pass\n")
    code, last = asyncio.run(testing._pytest(folder))
    assert code == 0 and last.startswith("1 passed"), last
    assert not (folder / "__pycache__").exists(), "the run compiled files into its folder"
