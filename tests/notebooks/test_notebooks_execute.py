"""Run every notebook under ``notebooks/`` in a fresh kernel and fail on any error or stderr.

nbval compares a notebook's stored outputs with fresh ones, but a magic that raises
``UsageError`` only prints to stderr and does not fail nbval (see FACTS). So here each
notebook runs with nbclient, with a time limit per cell, and any ``error`` output or any
``stderr`` stream output fails the test. Two more tests: the solution of each exercise
passes the exercise's check, and nbval itself passes on the stored outputs.

The kernel is this interpreter (as ``--nbval-current-env``), started in the notebook's folder
with the repository on ``PYTHONPATH``, so it works with or without ``pip install -e .``.

Refresh the stored outputs after editing a notebook (then check ``git diff``)::

    .venv/bin/python tests/notebooks/test_notebooks_execute.py --write [NOTEBOOK ...]
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
kernelspec = pytest.importorskip("jupyter_client.kernelspec")
manager = pytest.importorskip("jupyter_client.manager")
ipykernel_spec = pytest.importorskip("ipykernel.kernelspec")

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO / "notebooks"
SANITIZE = Path(__file__).with_name("sanitize.cfg")
CELL_TIMEOUT = 60  # seconds per cell; every cell of the tutorials takes a few at most
CURRENT_ENV = "durable-lab-current-env"


def notebooks() -> list[Path]:
    return sorted(
        p for p in NOTEBOOK_DIR.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and not p.name.startswith(".")
    )


def _id(path: Path) -> str:
    return str(path.relative_to(NOTEBOOK_DIR))


class _CurrentEnvSpecs(kernelspec.KernelSpecManager):  # type: ignore[misc, name-defined]
    """Kernel specs plus one for this interpreter, whatever the notebook's metadata says."""

    def get_kernel_spec(self, kernel_name: str) -> Any:
        if kernel_name == CURRENT_ENV:
            return kernelspec.KernelSpec(resource_dir=ipykernel_spec.RESOURCES, **ipykernel_spec.get_kernel_dict())
        return super().get_kernel_spec(kernel_name)


class _CurrentEnvKernelManager(manager.AsyncKernelManager):  # type: ignore[misc, name-defined]
    """Made by nbclient itself (so nbclient also shuts the kernel down), with our specs."""

    def _kernel_spec_manager_default(self) -> Any:
        return _CurrentEnvSpecs(data_dir=self.data_dir)


def kernel_env() -> dict[str, str]:
    paths = [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths))


def execute(path: Path, nb: Any = None, cwd: Path | None = None) -> tuple[Any, float]:
    """Run ``nb`` (default: the notebook at ``path``) in a fresh kernel in ``cwd`` (default:
    ``path``'s folder). Returns the executed notebook and the seconds it took, kernel start included."""
    nb = nbformat.read(path, as_version=4) if nb is None else nb
    client = nbclient.NotebookClient(
        nb,
        kernel_name=CURRENT_ENV,
        kernel_manager_class=_CurrentEnvKernelManager,
        timeout=CELL_TIMEOUT,
        allow_errors=True,  # errors are collected below, with every other problem
        record_timing=False,
        resources={"metadata": {"path": str(cwd or path.parent)}},
    )
    started = time.perf_counter()
    client.execute(env=kernel_env())
    return nb, time.perf_counter() - started


def problems(nb: Any) -> list[str]:
    """Every error output and every stderr stream, with the cell it came from."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        where = f"cell {index} ({cell.source.splitlines()[0] if cell.source else 'empty'!r})"
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                found.append(f"{where}: {output.ename}: {output.evalue}")
            elif output.output_type == "stream" and output.name == "stderr":
                found.append(f"{where} wrote to stderr: {output.text.strip()}")
    return found


def stdout_of(cell: Any) -> str:
    return "".join(o.text for o in cell.get("outputs", []) if o.output_type == "stream" and o.name == "stdout")


def verdict_of(cell: Any) -> str:
    """What a check cell said: its stdout and the text of what it displayed (a ``%check``
    verdict is displayed, an older check prints)."""
    shown = [
        o.get("data", {}).get("text/plain", "")
        for o in cell.get("outputs", [])
        if o.output_type in ("execute_result", "display_data")
    ]
    return stdout_of(cell) + "\n".join(shown)


def tagged(nb: Any, tag: str) -> list[Any]:
    return [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]


def with_solutions(nb: Any) -> Any:
    """A copy of ``nb`` whose ``exercise`` cells hold the code of its ``solution`` cells
    (the first ```python block of each, in order)."""
    nb = copy.deepcopy(nb)
    exercises, solutions = tagged(nb, "exercise"), tagged(nb, "solution")
    assert len(exercises) == len(solutions), "each exercise cell needs one solution cell"
    for exercise, solution in zip(exercises, solutions):
        match = re.search(r"```python\n(.*?)```", solution.source, re.DOTALL)
        assert match, f"no ```python block in the solution cell {solution.source[:60]!r}"
        exercise.source = match.group(1).strip("\n")
    return nb


# ---------------------------------------------------------------------- tests
def test_there_are_notebooks() -> None:
    assert notebooks(), f"no notebooks under {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", notebooks(), ids=_id)
def test_notebook_runs_cleanly(path: Path) -> None:
    """Untouched, as a learner gets it: no cell raises, and every check says "Not yet" with a
    hint (the exercises are still to do)."""
    nb, seconds = execute(path)
    found = problems(nb)
    assert not found, "\n".join(found)
    for check in tagged(nb, "check"):
        said = verdict_of(check)
        assert "Not yet" in said and "Hint:" in said, f"an untouched exercise's check said {said!r}"
    print(f"{_id(path)}: {seconds:.1f} s")


@pytest.mark.parametrize("path", [p for p in notebooks() if tagged(nbformat.read(p, as_version=4), "exercise")], ids=_id)
def test_exercise_solutions_pass_their_checks(path: Path) -> None:
    nb, _ = execute(path, with_solutions(nbformat.read(path, as_version=4)))
    found = problems(nb)
    assert not found, "\n".join(found)
    checks = tagged(nb, "check")
    assert len(checks) == len(tagged(nb, "exercise")), "each exercise needs one check cell"
    for check in checks:
        said = verdict_of(check)
        assert "Well done" in said and "Not yet" not in said, f"the check did not pass with the solution: {said!r}"


def test_stored_outputs_match_under_nbval() -> None:
    """The command of notebooks/README.md: fresh outputs equal the stored ones, sanitized."""
    pytest.importorskip("nbval")
    command = [
        sys.executable, "-m", "pytest", "--nbval", str(NOTEBOOK_DIR.relative_to(REPO)), "--nbval-current-env",
        "--nbval-sanitize-with", str(SANITIZE.relative_to(REPO)), "-p", "no:cacheprovider", "-q",
    ]
    done = subprocess.run(command, cwd=REPO, env=kernel_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


# ---------------------------------------------------------------------- refreshing outputs
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def without_widget_views(nb: Any) -> Any:
    """``nb`` with the widget views dropped from its outputs. A widget lives in its kernel: a
    stored view of one has no model to show once the kernel is gone, and JupyterLab then says
    "Error displaying widget: model not found" where the output's static HTML could show."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if isinstance(data, dict) and WIDGET_VIEW in data and len(data) > 1:
                del data[WIDGET_VIEW]
    return nb


def main(argv: list[str]) -> int:
    """``--write``: store fresh outputs in the notebooks; otherwise only report."""
    write = "--write" in argv
    paths = [Path(a).resolve() for a in argv if a != "--write"] or notebooks()
    failed = False
    for path in paths:
        nb, seconds = execute(path)
        found = problems(nb)
        print(f"{path.relative_to(REPO)}: {seconds:.1f} s, {len(found)} problem(s)")
        for problem in found:
            print(f"  {problem}")
        failed = failed or bool(found)
        if write and not found:
            nbformat.write(without_widget_views(nb), path)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
