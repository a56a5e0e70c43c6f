"""``temporalio.client.Client`` under the temporalio switch: the engine's client, whose
``connect`` takes a Temporal address and opens the engine's database instead."""

from __future__ import annotations

from typing import Any

from engine import client as _client
from engine import temporalio_compat


class Client(_client.Client):
    """The engine's ``Client``; ``connect("localhost:7233")`` opens ``temporalio_compat.target()``."""

    @classmethod
    async def connect(cls, target_host: str | None = None, **options: Any) -> "_client.Client":  # type: ignore[override]
        accepted = temporalio_compat.engine_connect_parameters(_client.Client.connect)
        kept = temporalio_compat.connect_options(options, accepted)
        return await super().connect(temporalio_compat.target(target_host), **kept)
