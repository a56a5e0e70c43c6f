"""The ``dlab`` command line: the temporal CLI's workflow verbs and a worker, over one SQLite file.

::

    dlab worker --task-queue hello --module myapp.workflows
    dlab workflow start --type Hello --task-queue hello --workflow-id hello-1 --input '"Ada"'
    dlab workflow show --workflow-id hello-1 [--detailed] [--output json]
    dlab workflow list --query "WorkflowType='Hello' AND ExecutionStatus='Running'"
    dlab workflow reset --workflow-id hello-1 --type FirstWorkflowTask --reason "bug fixed"
    dlab namespace describe                             # the namespace's id
    dlab load run --steps 10-60+10:5s --processes 2     # a load test (engine.loadtest)

Every command takes ``--db PATH`` (default: the ``DLAB_DB`` environment variable, else
``.durable/engine.db``, the notebooks' default) and ``--codec MODULE:FACTORY`` (default: the
``DLAB_CODEC`` environment variable) for a database written through a payload codec. Exit codes: 0 success, 1 the workflow did
not complete or the request failed (one ``Error:`` line on stderr), 2 wrong usage, 130
interrupted. Also runnable as ``python -m engine.cli``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Sequence

from engine.cli import _load, _namespace, _worker, _workflow
from engine.cli import _run
from engine.cli._common import CODEC_ENV, DB_ENV, DEFAULT_DB, EXIT_FAILED, EXIT_INTERRUPTED, CliError, Out, Parser
from engine.errors import EngineError, WorkflowFailureError, WorkflowUpdateFailedError, describe_failure

__all__ = ["main", "build_parser", "DB_ENV", "DEFAULT_DB"]


def build_parser() -> Parser:
    parser = Parser(
        prog="dlab",
        description="durable-lab's command line: the temporal CLI's workflow verbs and a worker, over one SQLite file.",
        epilog=f"Every command takes --db PATH (default ${DB_ENV}, else {DEFAULT_DB}) and --codec MODULE:FACTORY (default ${CODEC_ENV}). Exit codes: 0 ok, 1 failed, 2 usage, 130 interrupted.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    _workflow.register(sub)
    _namespace.register(sub)
    _worker.register(sub)
    _run.register(sub)
    _load.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (the console script exits with it)."""
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["run"]:
        # The script's own options follow: engine.run parses, and the script runs its own loop.
        return _run.run(given[1:])
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):
        parser.print_help()
        return 2
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # usage errors and --help
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    out = Out.for_args(args)
    try:
        return asyncio.run(args.handler(args, out))
    except CliError as e:
        out.error(str(e))
        return e.code
    except (EngineError, ValueError) as e:
        # Engine errors carry messages written for users; ValueError is bad input to the API.
        # A failed run or update says only that it failed (as temporalio's): print why, too.
        out.error(describe_failure(e) if isinstance(e, (WorkflowFailureError, WorkflowUpdateFailedError)) else str(e))
        return EXIT_FAILED
    except KeyboardInterrupt:
        out.error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        sys.stderr.close()  # `dlab ... | head`: the reader left, nothing more to say
        return EXIT_FAILED
