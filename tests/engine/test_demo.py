"""`make demo` (python -m engine.demo) runs to the end and tells its story."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_runs_every_step() -> None:
    done = subprocess.run([sys.executable, "-m", "engine.demo"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for step in range(1, 7):
        assert f"Step {step}." in out
    assert "WorkflowExecutionCompleted" in out
    # The exploration finds exactly the two at-least-once double effects of the transfer.
    assert "10 crash points, 2 violation(s) (MoneyTransfer)" in out
    assert "alice debited 2 times" in out and "dave credited 2 times" in out
