"""Lesson 17 (testing workflows): tests that catch bugs, checked by running them against mutants.

The learner's ``test_billing.py`` runs with pytest against today's ``billing.py`` and two broken
versions of it; a good suite passes on the first and fails on both others.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from kernel_ext.exercises import Check, NotYet, exercise

LESSON = Path(".durable/lesson-17")
REPO = Path(__file__).resolve().parents[2]
MUTANTS = {
    "bills a month too few": ("for _ in range(months):", "for _ in range(months - 1):"),
    "sleeps before it charges": (
        "            await workflow.execute_activity(charge, args=[customer, monthly_fee], start_to_close_timeout=timedelta(seconds=10))\n"
        "            total += monthly_fee\n"
        "            await workflow.sleep(timedelta(days=30))\n",
        "            await workflow.sleep(timedelta(days=30))\n"
        "            await workflow.execute_activity(charge, args=[customer, monthly_fee], start_to_close_timeout=timedelta(seconds=10))\n"
        "            total += monthly_fee\n",
    ),
}


FILES = ("billing.py", "conftest.py", "subscription_history.json", "test_billing.py")
Outcome = tuple[int, str]  # pytest's exit code (-1: it did not finish) and its last line


async def _pytest(folder: Path) -> Outcome:
    """pytest's exit code and last line, in a process of its own (60 s at most).

    Only ``folder`` counts: its own pytest.ini makes it the rootdir, no ini file or conftest.py
    above it is read, nothing is cached or compiled into it, and the pytest
    options of whoever runs the notebook (PYTEST_ADDOPTS, under a test suite) do not leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(PYTHONPATH=os.pathsep.join([str(REPO), str(folder)]), PYTHONDONTWRITEBYTECODE="1")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-q", "--color=no", "-p", "no:cacheprovider",
        "--rootdir", str(folder), "--confcutdir", str(folder), str(folder / "test_billing.py"),
        cwd=folder, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), 60)
    except asyncio.TimeoutError:
        process.kill()
        return -1, "pytest did not finish within 60 s"
    lines = [line for line in out.decode(errors="replace").splitlines() if line.strip()]
    return process.returncode or 0, lines[-1] if lines else ""


def read_lesson(lesson: Path = LESSON) -> dict[str, str]:
    """The lesson's project as it is now, read once: every suite the check runs gets these
    very files, even if something writes the lesson's folder meanwhile (another run of the
    notebook in the same folder: a test suite, a second kernel)."""
    missing = [name for name in FILES if not (lesson / name).exists()]
    if missing:
        raise NotYet(f"{', '.join(missing)} missing in {lesson}: run the cells above this one first.")
    return {name: (lesson / name).read_text() for name in FILES}


def _write(target: Path, files: dict[str, str], billing: str) -> Path:
    target.mkdir()
    (target / "pytest.ini").write_text("[pytest]\n")  # so that no ini file above the folder is used
    for name, text in files.items():
        (target / name).write_text(billing if name == "billing.py" else text)
    return target


async def run_suites(files: dict[str, str]) -> tuple[Outcome, dict[str, Outcome]]:
    """The learner's tests against today's billing.py, then against each mutant, each run in
    a fresh temporary folder of its own that is removed afterwards."""
    billing = files["billing.py"]
    for name, (old, _) in MUTANTS.items():
        assert old in billing, f"billing.py changed: the mutant '{name}' no longer applies"
    with tempfile.TemporaryDirectory(prefix="lesson-17-check-") as scratch:
        today = await _pytest(_write(Path(scratch) / "today", files, billing))
        if today[0] != 0:
            return today, {}
        folders = {
            name: _write(Path(scratch) / name.replace(" ", "-"), files, billing.replace(old, new))
            for name, (old, new) in MUTANTS.items()
        }
        outcomes = await asyncio.gather(*(_pytest(folder) for folder in folders.values()))  # side by side: faster
    return today, dict(zip(folders, outcomes))


@exercise(
    "write the tests",
    concept="testing workflows: time skipping, mocked activities, replay tests",
    hint="Test 1: start_time_skipping(), a Worker with workflows=[Subscription] and activities=[fake_charge], "
    "execute_workflow(...), then assert the result and `charged`. Test 2: "
    "Replayer(workflows=[Subscription]).replay_workflow(History.from_json(id, json_text)).",
)
async def tests_that_catch_bugs(c: Check) -> None:
    (code, last), mutants = await run_suites(read_lesson())
    c.require(
        code == 0 and "passed" in last,
        f"your tests pass on today's billing.py ({last})",
        f"your tests do not pass on today's billing.py: {last or 'no output'}",
        hint="Run them in the cell above to see pytest's message; both tests must pass on the code as it is.",
    )
    for name, (code, last) in mutants.items():
        hint = (
            "Assert the charges the fake activity recorded (12 of 10 for ada), not only that the run ends."
            if "few" in name
            else "Only a replay of the saved history notices a change in the order of steps: replay "
            "subscription_history.json against Subscription."
        )
        c.expect(code not in (0, -1), f"they fail on a version that {name} ({last})",
                 f"they pass on a version that {name}", hint=hint)
