"""Lesson 17 (testing workflows): tests that catch bugs, checked by running them against mutants.

The learner's ``test_billing.py`` runs with pytest against today's ``billing.py`` and two broken
versions of it; a good suite passes on the first and fails on both others.
"""

from __future__ import annotations

import asyncio
import os
import shutil
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


async def _pytest(folder: Path) -> tuple[int, str]:
    """pytest's exit code and last line, in a process of its own (60 s at most)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(folder)]))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-q", "--color=no", "-p", "no:cacheprovider", "test_billing.py",
        cwd=folder, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), 60)
    except asyncio.TimeoutError:
        process.kill()
        return -1, "pytest did not finish within 60 s"
    lines = [line for line in out.decode(errors="replace").splitlines() if line.strip()]
    return process.returncode or 0, lines[-1] if lines else ""


def _copy(target: Path, billing: str) -> None:
    for name in ("test_billing.py", "conftest.py", "subscription_history.json"):
        shutil.copy(LESSON / name, target / name)
    (target / "billing.py").write_text(billing)


@exercise(
    "write the tests",
    concept="testing workflows: time skipping, mocked activities, replay tests",
    hint="Test 1: start_time_skipping(), a Worker with workflows=[Subscription] and activities=[fake_charge], "
    "execute_workflow(...), then assert the result and `charged`. Test 2: "
    "Replayer(workflows=[Subscription]).replay_workflow(History.from_json(id, json_text)).",
)
async def tests_that_catch_bugs(c: Check) -> None:
    missing = [n for n in ("billing.py", "conftest.py", "subscription_history.json", "test_billing.py") if not (LESSON / n).exists()]
    if missing:
        raise NotYet(f"{', '.join(missing)} missing in {LESSON}: run the cells above this one first.")
    billing = (LESSON / "billing.py").read_text()
    with tempfile.TemporaryDirectory() as scratch:
        today = Path(scratch) / "today"
        today.mkdir()
        _copy(today, billing)
        code, last = await _pytest(today)
        c.require(
            code == 0 and "passed" in last,
            f"your tests pass on today's billing.py ({last})",
            f"your tests do not pass on today's billing.py: {last or 'no output'}",
            hint="Run them in the cell above to see pytest's message; both tests must pass on the code as it is.",
        )
        folders = {}
        for name, (old, new) in MUTANTS.items():
            assert old in billing, f"billing.py changed: the mutant '{name}' no longer applies"
            folders[name] = Path(scratch) / name.replace(" ", "-")
            folders[name].mkdir()
            _copy(folders[name], billing.replace(old, new))
        outcomes = await asyncio.gather(*(_pytest(folder) for folder in folders.values()))  # side by side: faster
        for name, (code, last) in zip(folders, outcomes):
            hint = (
                "Assert the charges the fake activity recorded (12 of 10 for ada), not only that the run ends."
                if "few" in name
                else "Only a replay of the saved history notices a change in the order of steps: replay "
                "subscription_history.json against Subscription."
            )
            c.expect(code not in (0, -1), f"they fail on a version that {name} ({last})",
                     f"they pass on a version that {name}", hint=hint)
