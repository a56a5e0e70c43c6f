"""A run read in one go, for viewers: ``await handle.snapshot()``.

A viewer of a run needs more than its history: every attempt of its activities (Temporal's
history keeps only the last one; the engine keeps them all in a side table), the runs of its
continue-as-new chain, its child runs, the faults injected into it, its status. Fetched one by
one, these can disagree (an attempt recorded between two reads); :func:`read_snapshot` reads
them in one read transaction and decodes the payloads with the client's data converter, so a
:class:`RunSnapshot` is one consistent, readable moment of the run. The frontend keeps the
implementation (``engine._frontend.snapshots``); this module is its public name.
"""

from __future__ import annotations

from engine._frontend.snapshots import ChildRun, RunSnapshot, RunSummary, read_snapshot

__all__ = ["ChildRun", "RunSnapshot", "RunSummary", "read_snapshot"]
