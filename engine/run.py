"""``dlab run app.py [args...]`` (also ``python -m engine.run``): run a temporalio-written app
on this engine, unchanged.

The script runs as ``__main__`` (as ``python app.py`` would run it) with the temporalio switch
on (``engine.temporalio_compat.install()``): its ``temporalio`` imports give the engine's
objects, and ``Client.connect("localhost:7233")`` opens the database given by ``--db``, else
``$DLAB_DB``, else ``.durable/engine.db``. ``-m package.module`` runs a module as
``python -m`` does. Several processes (a worker script, a starter script) share the file.
Each temporalio name the app uses and the engine lacks is said once on stderr, when first
used (an activity failing on it would otherwise be retried in silence).
"""

from __future__ import annotations

import importlib.util
import os
import runpy
import sys
from typing import Sequence

from engine import temporalio_compat

__all__ = ["main", "run", "USAGE"]

USAGE = "[--db PATH] (SCRIPT | -m MODULE) [ARGS...]"
HELP = f"""Run a temporalio-written script on durable-lab's engine, unchanged: its temporalio imports
map onto the engine and Client.connect('host:port') opens the engine's SQLite file.

  --db PATH    the engine database (default ${temporalio_compat.DB_ENV}, else {temporalio_compat.DEFAULT_DB})
  -m MODULE    run a module as `python -m MODULE` does
  ARGS         the script's own arguments (everything after SCRIPT or MODULE)

See {temporalio_compat.DOCS}."""


class UsageError(Exception):
    pass


def parse(argv: Sequence[str]) -> tuple[str | None, str | None, str | None, list[str]]:
    """(db, script, module, args). By hand: everything after the script or module is the
    script's own, options included (argparse would take them)."""
    db: str | None = None
    rest = list(argv)
    while rest:
        first = rest.pop(0)
        if first == "--db" or first.startswith("--db="):
            if first == "--db" and not rest:
                raise UsageError("--db needs a PATH")
            db = first.partition("=")[2] or rest.pop(0) if first.startswith("--db=") else rest.pop(0)
        elif first == "-m":
            if not rest:
                raise UsageError("-m needs a MODULE")
            return db, None, rest[0], rest[1:]
        elif first.startswith("-m") and len(first) > 2:
            return db, None, first[2:], rest
        elif first.startswith("-") and first != "-":
            raise UsageError(f"unknown option {first!r}")
        else:
            return db, first, None, rest
    raise UsageError("give a script to run, or -m MODULE")


def run(db: str | None, script: str | None, module: str | None, args: Sequence[str]) -> int:
    """Run the script or module with the switch on; its exit code."""
    if script is not None and not os.path.isfile(script):
        print(f"Error: no such script {script!r}.", file=sys.stderr)
        return 2
    if db:
        os.environ[temporalio_compat.DB_ENV] = db
    temporalio_compat.on_missing(_say_missing)
    temporalio_compat.install()
    sys.argv = [script if script is not None else str(module), *args]
    try:
        if module is not None:
            sys.path.insert(0, os.getcwd())  # as `python -m`
            if _find(module) is None:
                print(f"Error: no module named {module!r} here; run from the folder that holds it, or set PYTHONPATH.", file=sys.stderr)
                return 2
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            sys.path.insert(0, os.path.dirname(os.path.abspath(str(script))))  # as `python app.py`
            runpy.run_path(str(script), run_name="__main__")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def _find(module: str) -> object:
    try:
        return importlib.util.find_spec(module)
    except ImportError:  # a parent package that does not exist
        return None


def _say_missing(name: str) -> None:
    print(f"durable-lab: {name} is not supported by the engine yet (see {temporalio_compat.DOCS}).", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None, prog: str = "python -m engine.run") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(f"usage: {prog} {USAGE}\n\n{HELP}")
        return 0
    try:
        db, script, module, args = parse(argv)
    except UsageError as e:
        print(f"usage: {prog} {USAGE}\nError: {e}.", file=sys.stderr)
        return 2
    return run(db, script, module, args)


if __name__ == "__main__":
    raise SystemExit(main())
