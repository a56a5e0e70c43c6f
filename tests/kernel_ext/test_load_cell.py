"""Magics in the cell that loads the extension: IPython transformed that cell before the
input transformer that awaits our magics existed."""

from __future__ import annotations

from IPython.core.interactiveshell import InteractiveShell

from kernel_ext.magics import Pending
from tests.kernel_ext.test_magics import run, shell  # noqa: F401 - the fixture


def test_magics_in_the_cell_that_loads_the_extension_run(shell: InteractiveShell) -> None:
    run(shell, "%unload_ext kernel_ext")
    # IPython transformed this cell before %load_ext installed the transformer.
    status = run(shell, "%load_ext kernel_ext\n%config DurableLab.db_path = ':memory:'\nstatus = %engine\nstatus")
    assert "durable-lab engine" in status.text()
    run(shell, "%unload_ext kernel_ext")
    # A cell that runs as a coroutine (it awaits something) awaits them as the transformer would.
    cell = "%load_ext kernel_ext\nimport asyncio\nawait asyncio.sleep(0)\ndef later():\n    return get_ipython().run_line_magic('engine', '')\n%engine"
    assert "durable-lab engine" in run(shell, cell).text()
    assert isinstance(run(shell, "later()"), Pending)  # inside a def it stays an awaitable
    assert "durable-lab engine" in run(shell, "%reload_ext kernel_ext\n%engine").text()
