"""``dlab run app.py [args...]`` (also ``python -m engine.run``): run a temporalio-written app
on this engine, unchanged.

The script runs as ``__main__`` (as ``python app.py`` would run it) with the temporalio switch
on (``engine.temporalio_compat.install()``): its ``temporalio`` imports give the engine's
objects, and ``Client.connect("localhost:7233")`` opens the database given by ``--db``, else
``$DLAB_DB``, else ``.durable/engine.db``. ``-m package.module`` runs a module as
``python -m`` does. Several processes (a worker script, a starter script) share the file.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from typing import Sequence

from engine import temporalio_compat

__all__ = ["main", "build_parser"]


def build_parser(prog: str = "python -m engine.run") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run a temporalio-written script on durable-lab's engine: its temporalio imports map onto the "
        "engine, and Client.connect('host:port') opens the engine's SQLite file.",
        epilog=f"Database: --db PATH, else ${temporalio_compat.DB_ENV}, else {temporalio_compat.DEFAULT_DB}. See {temporalio_compat.DOCS}.",
    )
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH", help=f"The engine database (default ${temporalio_compat.DB_ENV}, else {temporalio_compat.DEFAULT_DB}).")
    parser.add_argument("-m", dest="module", metavar="MODULE", help="Run a module as a script, as `python -m MODULE`.")
    parser.add_argument("script", nargs="?", help="The Python file to run (or use -m MODULE).")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="Arguments for the script (its sys.argv[1:]).")


def run(db: str | None, script: str | None, module: str | None, args: Sequence[str]) -> int:
    """Run the script or module with the switch on; its exit code."""
    if (script is None) == (module is None):
        print("Error: give a script to run, or -m MODULE (not both).", file=sys.stderr)
        return 2
    if script is not None and not os.path.isfile(script):
        print(f"Error: no such script {script!r}.", file=sys.stderr)
        return 2
    if db:
        os.environ[temporalio_compat.DB_ENV] = db
    temporalio_compat.install()
    argv0 = script if script is not None else str(module)
    sys.argv = [argv0, *args]
    try:
        if module is not None:
            sys.path.insert(0, os.getcwd())  # as `python -m`
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            sys.path.insert(0, os.path.dirname(os.path.abspath(str(script))))  # as `python app.py`
            runpy.run_path(str(script), run_name="__main__")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "python -m engine.run") -> int:
    args = build_parser(prog).parse_args(argv)
    if args.module is not None and args.script is not None:
        # `-m mod a b`: argparse took `a` as the script; it is the module's first argument.
        args.args = [args.script, *args.args]
        args.script = None
    return run(args.db, args.script, args.module, args.args)


if __name__ == "__main__":
    raise SystemExit(main())
