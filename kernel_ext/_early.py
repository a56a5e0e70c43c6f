"""Makes ``%load_ext kernel_ext`` and a magic work in the same cell of a Jupyter kernel.

ipykernel decides whether a cell runs as a coroutine before running it, from the cell as
transformed then; the cell that loads kernel_ext was transformed before kernel_ext's
transformer existed, so ipykernel runs it synchronously, inside the event loop that the
engine's magics would have to wait on. No code in the cell can fix that once it runs.

This module is a tiny IPython extension that a kernel loads at start (``make setup`` adds it
to ``.venv``'s IPython kernel config with ``python -m kernel_ext._early --install``). It only
registers a transformer: a cell that loads kernel_ext gets ``await`` in front of the
durable-lab magics that follow, as kernel_ext's own transformer would have done, so the
kernel runs it as a coroutine. It imports nothing of the engine; kernels that never load
kernel_ext pay for one string search per cell. Where it is not installed, such a cell gets
a one-line ``UsageError`` saying to run it again (see ``_transform._run_now``).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from kernel_ext import _transform

__all__ = ["await_magics_in_loading_cell", "load_ipython_extension", "unload_ipython_extension", "install"]

# `%load_ext kernel_ext` and `%reload_ext kernel_ext` as IPython writes them before
# input_transformers_post run.
_LOADS = re.compile(r"""run_line_magic\(\s*['"](?:re)?load_ext['"]\s*,\s*['"]\s*kernel_ext\s*['"]""")

CONFIG_NAME = "ipython_kernel_config.py"
MODULE = "kernel_ext._early"  # not __name__, which is __main__ under `python -m`
MARK = "# durable-lab:"
CONFIG_LINE = f'c.InteractiveShellApp.extensions.append("{MODULE}")  {MARK} %load_ext kernel_ext + magics in one cell'


def await_magics_in_loading_cell(lines: list[str]) -> list[str]:
    """``await`` the durable-lab magics of a cell that loads kernel_ext (other cells as they are)."""
    if not _LOADS.search("".join(lines)):
        return lines
    return _transform.await_magics(lines)


def load_ipython_extension(shell: Any) -> None:
    if await_magics_in_loading_cell not in shell.input_transformers_post:
        shell.input_transformers_post.append(await_magics_in_loading_cell)


def unload_ipython_extension(shell: Any) -> None:
    while await_magics_in_loading_cell in shell.input_transformers_post:
        shell.input_transformers_post.remove(await_magics_in_loading_cell)


def install(prefix: Path | None = None) -> Path:
    """Add this extension to the IPython kernel config of the environment at ``prefix``
    (default: this interpreter's), once; other lines of an existing config are kept."""
    config = Path(prefix or sys.prefix) / "etc" / "ipython" / CONFIG_NAME
    text = config.read_text() if config.exists() else ""
    if CONFIG_LINE in text:
        return config
    kept = [line for line in text.splitlines() if MARK not in line]  # an older line of ours
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("\n".join([*kept, CONFIG_LINE]) + "\n")
    return config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kernel_ext._early", description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true", help="add it to this environment's IPython kernel config")
    args = parser.parse_args(argv)
    if not args.install:
        parser.error("nothing to do: pass --install")
    print(f"durable-lab: kernels of {sys.prefix} load {MODULE} ({install()})")


if __name__ == "__main__":
    main()
