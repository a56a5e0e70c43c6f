"""How messages name a place in source code: a file and line, or what a host calls it.

A notebook runs cells from files it names itself (ipykernel: ``/tmp/ipykernel_123/456.py``),
which mean nothing to the person who wrote the cell. A host that knows better (the notebook
extension: ``Cell In[12]``, as IPython's tracebacks say) registers a namer; the engine asks
it when it writes a non-determinism or sandbox message. The engine itself imports no host.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["Namer", "add_namer", "remove_namer", "place"]

Namer = Callable[[str], "str | None"]

# Process-wide, as linecache is: a file's name is the same whoever asks.
_namers: list[Namer] = []


def add_namer(namer: Namer) -> None:
    """Ask ``namer(filename)`` first; it returns a name (``Cell In[12]``) or None."""
    if namer not in _namers:
        _namers.insert(0, namer)


def remove_namer(namer: Namer) -> None:
    while namer in _namers:
        _namers.remove(namer)


def place(filename: str, lineno: int) -> str:
    """``Cell In[12], line 5`` where a namer knows the file, else ``path/to/file.py:5``."""
    for namer in _namers:
        try:
            name = namer(filename)
        except Exception:  # noqa: BLE001 - a broken namer must not hide the real error
            name = None
        if name:
            return f"{name}, line {lineno}"
    return f"{filename}:{lineno}"
