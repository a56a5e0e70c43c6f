"""The input transformer that makes durable-lab magics awaitable cells.

IPython turns ``%workflow execute ...`` into ``get_ipython().run_line_magic('workflow', ...)``
before ``input_transformers_post`` run. Our magics return awaitables, so this transformer
puts ``await`` in front of those calls; the cell then becomes a top-level ``await`` that
IPython (and ipykernel) run on the kernel's event loop, where the engine's workers live.
``r = await %workflow execute ...`` itself would be a SyntaxError, hence the rewrite.
"""

from __future__ import annotations

import ast
from typing import Any, Iterator

__all__ = ["LINE_MAGICS", "CELL_MAGICS", "await_magics", "install", "uninstall"]

LINE_MAGICS = frozenset({"worker", "workflow", "engine", "fault", "explore"})
CELL_MAGICS = frozenset({"workflow", "activity"})

_CALLERS = {"run_line_magic": LINE_MAGICS, "run_cell_magic": CELL_MAGICS}

# Scopes where ``await`` is not allowed at the top level of a cell.
_NEW_SCOPES = (ast.FunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _is_our_magic_call(node: ast.AST) -> bool:
    """``get_ipython().run_line_magic('workflow', ...)`` and friends, nothing else."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return False
    names = _CALLERS.get(node.func.attr)
    target = node.func.value
    if names is None or not isinstance(target, ast.Call) or target.args or target.keywords:
        return False
    if not (isinstance(target.func, ast.Name) and target.func.id == "get_ipython"):
        return False
    first = node.args[0] if node.args else None
    return isinstance(first, ast.Constant) and first.value in names


def _calls_to_await(node: ast.AST, parent: ast.AST | None = None) -> Iterator[ast.Call]:
    if isinstance(node, _NEW_SCOPES):
        return  # an ``await`` inside a def or class body would be a SyntaxError
    if _is_our_magic_call(node) and not isinstance(parent, ast.Await):
        assert isinstance(node, ast.Call)
        yield node
    for child in ast.iter_child_nodes(node):
        yield from _calls_to_await(child, node)


def await_magics(lines: list[str]) -> list[str]:
    """Prefix ``await`` to each call of our magics at the top level of a cell.

    Calls inside a ``def``, ``lambda``, class body or comprehension are left alone (they
    return an awaitable there), and so is a cell that does not parse: IPython reports its
    syntax error itself.
    """
    text = "".join(lines)
    if "run_line_magic(" not in text and "run_cell_magic(" not in text:
        return lines
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return lines
    calls = list(_calls_to_await(tree))
    if not calls:
        return lines
    encoded = [line.encode("utf-8") for line in text.splitlines(keepends=True)]
    # Right to left, so earlier offsets stay valid; col_offset counts UTF-8 bytes.
    for call in sorted(calls, key=lambda c: (c.lineno, c.col_offset), reverse=True):
        row = call.lineno - 1
        line = encoded[row]
        encoded[row] = line[: call.col_offset] + b"await " + line[call.col_offset :]
    return [line.decode("utf-8") for line in encoded]


def install(shell: Any) -> None:
    """Add the transformer to ``shell.input_transformers_post`` (once)."""
    if await_magics not in shell.input_transformers_post:
        shell.input_transformers_post.append(await_magics)


def uninstall(shell: Any) -> None:
    """Remove the transformer again (``%unload_ext``)."""
    while await_magics in shell.input_transformers_post:
        shell.input_transformers_post.remove(await_magics)
