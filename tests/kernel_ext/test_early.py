"""kernel_ext._early: the cell that loads kernel_ext gets its magics awaited."""

from __future__ import annotations

import ast
from pathlib import Path

from kernel_ext import _early


def _transformed(cell: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    python = TransformerManager().transform_cell(cell)
    return "".join(_early.await_magics_in_loading_cell(python.splitlines(keepends=True)))


def test_a_loading_cell_awaits_the_magics_after_the_load() -> None:
    code = _transformed("%load_ext kernel_ext\n%worker start -t q\nr = %workflow execute --type Hello -t q\nprint(r)\n")
    assert "await get_ipython().run_line_magic('worker'" in code
    assert "r = await get_ipython().run_line_magic('workflow'" in code
    assert "await get_ipython().run_line_magic('load_ext'" not in code  # %load_ext is not awaitable
    ast.parse(code)  # top-level await is what makes the kernel run it as a coroutine
    assert "await" in _transformed("%reload_ext  kernel_ext\n%engine\n")


def test_other_cells_are_left_alone() -> None:
    for cell in ("%engine\n", "%load_ext autoreload\n%engine\n", "x = 1\n", "%load_ext kernel_extras\n%engine\n"):
        python = _transformed(cell.replace("%engine", "y = 2"))
        assert "await" not in python, cell
    plain = _transformed("%engine\n")
    assert "await" not in plain  # without %load_ext kernel_ext, kernel_ext's own transformer decides


def test_install_adds_one_line_and_keeps_the_rest(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "ipython" / "ipython_kernel_config.py"
    config.parent.mkdir(parents=True)
    config.write_text("c.InteractiveShell.colors = 'nocolor'\n")
    assert _early.install(tmp_path) == config
    _early.install(tmp_path)
    text = config.read_text()
    assert text.count("kernel_ext._early") == 1 and "colors = 'nocolor'" in text
    # The line is valid traitlets config: it appends to the extensions a kernel loads.
    from traitlets.config import Config

    c = Config()
    exec(compile(text, str(config), "exec"), {"c": c, "get_config": lambda: c})
    assert "kernel_ext._early" in list(c.InteractiveShellApp.extensions.get_value([]))


def test_the_config_names_the_module_even_under_python_m() -> None:
    import subprocess
    import sys

    line = subprocess.run(
        [sys.executable, "-c", "import runpy, sys; sys.argv=['x']; import kernel_ext._early as e; print(e.CONFIG_LINE)"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert 'extensions.append("kernel_ext._early")' in line and "__main__" not in _early.CONFIG_LINE
