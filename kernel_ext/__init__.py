"""The IPython extension: ``%load_ext kernel_ext`` opens the kernel's durable engine.

Magics (``%worker?``, ``%workflow?``, ``%engine?`` show their help):

- ``%%workflow`` / ``%%activity`` cells define workflows and activities for the kernel's workers;
- ``%worker start|stop|list`` runs workers on the kernel's event loop;
- ``%workflow start|execute|show|list|describe|result|signal|query|cancel|terminate|reset`` mirror
  ``temporal workflow`` (``show --output graph|saga|chain`` draws the run);
- ``%engine`` shows the engine (``--reset``, ``--time real|skip``, ``--advance 30d``);
- ``%replay --workflow-id ID`` (or ``--file history.json --workflow module:Class``) steps
  through a replay of a run, forward and back, in the debugger widget;
- ``%check NAME`` runs an exercise check (``kernel_ext.exercises``) and shows its verdict.

Settings: ``%config DurableLab.db_path = ':memory:'``, ``%config DurableLab.time_mode = 'skip'``,
``%config DurableLab.data_converter = converter`` (a variable holding an
``engine.converter.DataConverter``; with an encryption codec the viewers decrypt with it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kernel_ext._session import Session, SessionError

__all__ = ["load_ipython_extension", "unload_ipython_extension", "Session", "SessionError"]


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext kernel_ext``."""
    from kernel_ext.magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext kernel_ext`` (and ``%reload_ext``)."""
    from kernel_ext.magics import unload

    unload(ipython)


def __getattr__(name: str) -> Any:
    # Lazily, so that importing a small part of kernel_ext (``kernel_ext._early``, loaded by
    # every kernel of the environment) does not import the engine.
    if name in ("Session", "SessionError"):
        from kernel_ext import _session

        return getattr(_session, name)
    raise AttributeError(f"module 'kernel_ext' has no attribute {name!r}")
