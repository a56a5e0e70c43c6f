"""Temporal SDK core's internal flags that this engine's workers use.

The first completed workflow task of a run records them (``sdkMetadata.coreUsedFlags``), and
replay follows the flags a history recorded, so a history written before a flag existed
replays as it was written (temporalio does the same).
"""

from __future__ import annotations

from typing import Any, Mapping

# 1: the replayer checks activity (and child workflow) ids and types.
ID_AND_TYPE_CHECKS = 1
# 2: each patch marker is followed by an upsert of the TemporalChangeVersion search attribute.
UPSERT_ON_PATCH = 2

SDK_FLAGS = [ID_AND_TYPE_CHECKS, UPSERT_ON_PATCH]


def flags_of(completed_attributes: Mapping[str, Any]) -> set[int]:
    """The flags a WorkflowTaskCompleted event recorded."""
    metadata = completed_attributes.get("sdkMetadata") or {}
    try:
        return {int(flag) for flag in metadata.get("coreUsedFlags") or ()}
    except (TypeError, ValueError):
        return set()
