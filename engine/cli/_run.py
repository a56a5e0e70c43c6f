"""``dlab run``: run a temporalio-written script with the temporalio switch on (``engine.run``)."""

from __future__ import annotations

import argparse
from typing import Any, Sequence

from engine import run as _run


def register(sub: Any) -> None:
    # Listed in `dlab --help`; `dlab run ...` itself goes to run() before argparse, so that the
    # script's own options reach the script.
    sub.add_parser(
        "run", help="Run a temporalio-written script on the engine.", usage=f"dlab run {_run.USAGE}",
        description=_run.HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def run(argv: Sequence[str]) -> int:
    return _run.main(argv, prog="dlab run")
