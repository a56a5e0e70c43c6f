"""``dlab run``: run a temporalio-written script with the temporalio switch on (``engine.run``)."""

from __future__ import annotations

import argparse
from typing import Any

from engine import run as _run


def register(sub: Any) -> None:
    text = (
        "Run a temporalio-written script (or -m MODULE) on this engine, unchanged: its temporalio imports map "
        "onto the engine and Client.connect('host:port') opens the database (--db, else $DLAB_DB, else "
        ".durable/engine.db). See docs/temporalio.md."
    )
    parser = sub.add_parser("run", help="Run a temporalio-written script on the engine.", description=text)
    _run.add_arguments(parser)
    parser.set_defaults(sync_handler=run)


def run(args: argparse.Namespace) -> int:
    if args.module is not None and args.script is not None:
        args.args = [args.script, *args.args]
        args.script = None
    return _run.run(args.db, args.script, args.module, args.args)
