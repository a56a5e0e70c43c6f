"""Temporal's own samples (``../shared/reference/samples-python``) against the engine.

Two checks, each in subprocesses so that the temporalio switch never reaches our own tests:

- the samples' own pytest tests, run unchanged by one ``pytest -p dlab_samples_plugin
  --noconftest`` (the plugin maps temporalio onto the engine and gives them our
  ``WorkflowEnvironment``/``Client`` as their ``env``/``client`` fixtures);
- each sample's programme (its ``main()``), run with ``python -m engine.run -m MODULE`` (as
  ``dlab run``), beside its worker when the sample has one of its own, with a time limit.

``samples.py`` holds the one table of what is skipped (out of scope) and what fails today
(``xfail(strict=True)`` with the API that is missing); README.md shows it with the results.
``python tests/samples/_runner.py`` prints every outcome.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.samples import _runner
from tests.samples.samples import MISSING, SKIPPED, STARTERS, TESTS

pytestmark = pytest.mark.skipif(
    not _runner.SAMPLES.is_dir(), reason="../shared/reference/samples-python is absent (it is not part of the project)"
)


def _marks(key: str) -> list[Any]:
    if key in SKIPPED:
        return [pytest.mark.skip(reason=SKIPPED[key])]
    if key in MISSING:
        return [pytest.mark.xfail(strict=True, reason=MISSING[key])]
    return []


@pytest.fixture(scope="module")
def test_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    return _runner.run_tests(tmp_path_factory.mktemp("samples") / "report.json", ignore=[t for t in TESTS if t in SKIPPED])


@pytest.fixture(scope="module")
def starter_outcomes(request: pytest.FixtureRequest) -> dict[str, _runner.Outcome]:
    # Only the starters this session runs (`-k hello` runs fewer), all at once.
    selected = [
        item.callspec.params["name"] for item in request.session.items
        if item.originalname == "test_sample_starter" and hasattr(item, "callspec")
    ]
    return _runner.run_starters([n for n in selected if n not in SKIPPED])


@pytest.mark.parametrize("node_id", [pytest.param(t, marks=_marks(t), id=t.removeprefix("tests/")) for t in TESTS])
def test_sample_test(node_id: str, test_outcomes: dict[str, dict[str, str]]) -> None:
    # A whole file (listed when it fails to import) passes when every test in it passed.
    found = {k: v for k, v in test_outcomes.items() if k == node_id or k.startswith(node_id + "::")}
    assert found, f"{node_id} did not run (renamed in the samples? update tests/samples/samples.py)"
    failed = {k: v["message"] for k, v in found.items() if v["outcome"] != "passed"}
    assert not failed, "\n".join(f"{k}: {m}" for k, m in failed.items())


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(n)) for n in STARTERS])
def test_sample_starter(name: str, starter_outcomes: dict[str, _runner.Outcome]) -> None:
    outcome = starter_outcomes[name]
    assert outcome.passed, outcome.why


def test_the_table_covers_every_sample_test(test_outcomes: dict[str, dict[str, str]]) -> None:
    listed = [t for t in TESTS if t not in SKIPPED]
    unlisted = [k for k in test_outcomes if not any(k == t or k.startswith(t + "::") for t in listed)]
    assert not unlisted, f"sample tests missing from tests/samples/samples.py TESTS: {unlisted}"
    assert set(SKIPPED) | set(MISSING) <= set(TESTS) | set(STARTERS), "a table entry names no sample"


def test_every_sample_has_a_starter() -> None:
    packages = {p.parent.relative_to(_runner.SAMPLES).as_posix() for p in _runner.SAMPLES.glob("*/__init__.py")}
    packages -= {"tests", "hello", "message_passing", "polling"}  # tests; the others hold one sample per module or folder
    covered = {n.split("/")[0] for n in STARTERS}
    assert packages <= covered, f"samples without a starter entry: {sorted(packages - covered)}"


def test_readme_table_matches() -> None:
    from tests.samples.readme import table

    readme = (Path(__file__).with_name("README.md")).read_text()
    assert table() in readme, "tests/samples/README.md is stale: run `python tests/samples/readme.py --write`"
