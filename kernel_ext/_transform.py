"""The input transformer that makes durable-lab magics awaitable cells.

IPython turns ``%workflow execute ...`` into ``get_ipython().run_line_magic('workflow', ...)``
before ``input_transformers_post`` run. Our magics return awaitables, so this transformer
puts ``await`` in front of those calls; the cell then becomes a top-level ``await`` that
IPython (and ipykernel) run on the kernel's event loop, where the engine's workers live.
``r = await %workflow execute ...`` itself would be a SyntaxError, hence the rewrite.

The cell that loads the extension was transformed before the transformer existed: its
statements after ``%load_ext kernel_ext`` are rewritten by :func:`await_rest_of_cell`.
"""

from __future__ import annotations

import ast
import sys
from typing import Any, Awaitable, Iterator

from IPython.core.error import UsageError

__all__ = ["LINE_MAGICS", "CELL_MAGICS", "await_magics", "await_rest_of_cell", "install", "uninstall"]

LINE_MAGICS = frozenset({"worker", "workflow", "engine", "fault", "explore", "replay", "temporal", "check", "loadtest"})
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


def _wrap_calls(node: ast.AST, wrap: Any) -> int:
    """Replace each call of our magics under ``node`` that :func:`_calls_to_await` would
    prefix with ``await`` by ``wrap(call)``, in place; return how many."""
    count = 0
    if isinstance(node, _NEW_SCOPES):
        return count
    for field, value in ast.iter_fields(node):
        items = value if isinstance(value, list) else [value]
        for i, child in enumerate(items):
            if not isinstance(child, ast.AST) or isinstance(child, _NEW_SCOPES):
                continue
            if _is_our_magic_call(child) and not isinstance(node, ast.Await):
                new = ast.copy_location(wrap(child), child)
                if isinstance(value, list):
                    value[i] = new
                else:
                    setattr(node, field, new)
                count += 1
            count += _wrap_calls(child, wrap)
    return count


def _statements_still_to_run() -> tuple[list[ast.AST], bool] | None:
    """The statements of the running cell after the current one, and whether the cell runs
    as a coroutine on an event loop. IPython compiles and runs a cell statement by statement
    (``InteractiveShell.run_ast_nodes``), so the statements not run yet can still change."""
    frame = sys._getframe(1)
    driven_sync = False
    found = None
    while frame is not None:
        names = frame.f_code.co_name
        if found is None and names == "run_ast_nodes" and "to_run" in frame.f_locals:
            found = frame.f_locals
        if names == "_pseudo_sync_runner":
            driven_sync = True
        frame = frame.f_back  # type: ignore[assignment]
    if found is None:
        return None
    to_run, current = found["to_run"], found.get("node")
    index = next((i for i, (node, _) in enumerate(to_run) if node is current), None)
    if index is None:
        return None
    return [node for node, _ in to_run[index + 1 :]], not driven_sync


def _run_now(pending: Awaitable[Any]) -> Any:
    """Run a magic to the end from a cell that IPython runs synchronously."""
    from IPython.core.async_helpers import get_asyncio_loop

    loop = get_asyncio_loop()
    if loop.is_running():  # ipykernel: the cell runs inside the loop, which cannot wait for it
        raise UsageError(
            "This magic is in the cell that loaded kernel_ext, which Jupyter had already prepared "
            "to run without awaiting it. Run the cell again (the extension stays loaded), or put "
            "%load_ext kernel_ext in a cell of its own."
        )

    async def run() -> Any:
        return await pending

    return loop.run_until_complete(run())


def await_rest_of_cell() -> int:
    """Make the magics in the rest of the running cell run (call from ``%load_ext``).

    In a cell that runs as a coroutine they are awaited as the transformer would have done.
    In a cell IPython runs synchronously they are run to the end on IPython's idle loop (a
    terminal, a test shell). In a kernel, whose loop is busy running the cell itself, they
    cannot wait: they raise a ``UsageError`` saying to run the cell again. Returns how many
    calls were rewritten."""
    found = _statements_still_to_run()
    if found is None:
        return 0
    statements, as_coroutine = found
    if as_coroutine:
        wrap: Any = lambda call: ast.Await(value=call)  # noqa: E731
    else:
        helper = ast.parse(f"__import__({__name__!r}, fromlist=['_run_now'])._run_now", mode="eval").body
        wrap = lambda call: ast.Call(func=helper, args=[call], keywords=[])  # noqa: E731
    count = 0
    for statement in statements:
        count += _wrap_calls(statement, wrap)
        ast.fix_missing_locations(statement)
    return count


def install(shell: Any) -> None:
    """Add the transformer to ``shell.input_transformers_post`` (once)."""
    if await_magics not in shell.input_transformers_post:
        shell.input_transformers_post.append(await_magics)


def uninstall(shell: Any) -> None:
    """Remove the transformer again (``%unload_ext``)."""
    while await_magics in shell.input_transformers_post:
        shell.input_transformers_post.remove(await_magics)
