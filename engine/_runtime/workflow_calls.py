"""What a run's code asks of it besides activities and timers, each deterministic on replay:
the time, randomness, patches (versioning), search attribute and memo upserts, conditions.
"""

from __future__ import annotations

import asyncio
import json
import random as _random
import uuid
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from engine._api.sdk_flags import UPSERT_ON_PATCH
from engine._conversion import search_attributes as _search_attributes
from engine._conversion.payload_converter import Payload, to_json_payload
from engine._runtime.commands import PATCH_MARKER
from engine._runtime.event_loop import HistoryEventLoop
from engine._runtime.info import WorkflowInfo
from engine._runtime.seed import randomness_seed
from engine.common import SearchAttributePair, SearchAttributeUpdate


class WorkflowCalls(HistoryEventLoop):
    """The deterministic calls of ``WorkflowInstance`` that ``engine.workflow`` exposes."""

    # Kept by WorkflowInstance (engine/_runtime/instance.py), which this class is a part of.
    info: WorkflowInfo
    payload_converter: Any
    _replaying: bool
    _conditions: list[tuple[Callable[[], bool], asyncio.Future]]
    _random_instance: _random.Random | None
    _patches: dict[str, bool]
    _activation_patches: set[str]
    _change_versions: list[str]
    uses_flag: Callable[[int], bool]

    # ----------------------------------------------------------------- helpers for the API
    def now(self) -> datetime:
        return self._now

    def is_replaying(self) -> bool:
        return self._replaying

    @property
    def _rng(self) -> _random.Random:
        # Seeded on first use: most workflows never draw a random number.
        if self._random_instance is None:
            self._random_instance = _random.Random(randomness_seed(self.info.run_id))
        return self._random_instance

    def random(self) -> _random.Random:
        return self._rng

    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(int=self._rng.getrandbits(128), version=4)

    def patched(self, patch_id: str, *, deprecated: bool = False) -> bool:
        """Versioning: True on runs that took the new code path (see ``workflow.patched``)."""
        if patch_id in self._patches:
            return self._patches[patch_id]
        use = (patch_id in self._activation_patches) if self._replaying else True
        self._patches[patch_id] = use
        if use:
            # Temporal's core SDK writes this payload itself (not the data converter), in this field order.
            data = json.dumps({"id": patch_id, "deprecated": deprecated}, separators=(",", ":"))
            payload = Payload({"encoding": b"json/plain"}, data.encode()).to_json()
            self._add_command(
                "RecordMarker", {"markerName": PATCH_MARKER, "details": {"patch-data": {"payloads": [payload]}}}
            )
            if self.uses_flag(UPSERT_ON_PATCH):
                # Temporal's SDK core follows each marker with every patch id of the run so
                # far, so that runs can be listed by the code paths they took.
                self._change_versions.append(patch_id)
                fields = _search_attributes.change_version_update(self._change_versions)
                self._add_command("UpsertWorkflowSearchAttributes", {"searchAttributes": {"indexedFields": fields}})
        return use

    def upsert_search_attributes(self, updates: Sequence[SearchAttributeUpdate[Any]]) -> None:
        """See ``workflow.upsert_search_attributes``."""
        fields = _search_attributes.encode_updates(updates)
        if not fields:
            return
        attrs = self.info.typed_search_attributes
        for update in updates:
            attrs = attrs.without(update.key.name)
            if update.value is not None:
                attrs = attrs.updated(SearchAttributePair(update.key, update.value))
        self._add_command("UpsertWorkflowSearchAttributes", {"searchAttributes": {"indexedFields": fields}})
        self.info.typed_search_attributes = attrs

    def upsert_memo(self, updates: Mapping[str, Any]) -> None:
        """See ``workflow.upsert_memo``."""
        if not isinstance(updates, Mapping):
            raise TypeError(f"upsert_memo takes a dict of memo fields (None removes one), not {type(updates).__name__}.")
        # Converted before the command is added, so that a value that does not convert leaves none.
        fields = {
            str(k): Payload({"encoding": b"binary/null"}).to_json() if v is None else to_json_payload(self.payload_converter, v, f"memo field {k!r}")
            for k, v in updates.items()
        }
        if not fields:
            return
        self._add_command("ModifyWorkflowProperties", {"upsertedMemo": {"fields": fields}})
        self.info.raw_memo = _search_attributes.merged(self.info.raw_memo, fields)

    def wait_condition_future(self, fn: Callable[[], bool]) -> asyncio.Future:
        fut = self.create_future()
        self._conditions.append((fn, fut))
        return fut
