"""How a workflow handle shows itself in a notebook: the run's explorer, following the run.

Kept apart from :mod:`kernel_ext._session` (which only calls :func:`handle_bundle`) so that a
kernel without anywidget, or a plain terminal without a running event loop, still gets the
older live view or plain text.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.client import WorkflowHandle


def handle_bundle(handle: WorkflowHandle) -> dict[str, Any]:
    """The MIME bundle of a displayed handle: the explorer where it can run."""
    try:
        asyncio.get_running_loop()
        from kernel_ext.explorer import RunExplorer
    except (ImportError, RuntimeError):
        from kernel_ext.live import LiveRunView

        return LiveRunView(handle)._repr_mimebundle_()
    data, _ = RunExplorer.loading(handle._client, handle.id, handle.run_id)._repr_mimebundle_()
    return dict(data)
