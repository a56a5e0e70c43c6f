"""``temporalio.envconfig`` under the temporalio switch: there is no server profile to load."""

from __future__ import annotations

from typing import Any

__all__ = ["ClientConfig"]


class ClientConfig:
    """temporalio's ``ClientConfig`` loads a server address, namespace and TLS from a config
    file or ``TEMPORAL_*`` variables; here every connection opens the engine's database, so
    there is nothing to load."""

    @staticmethod
    def load_client_connect_config(**_: Any) -> dict[str, Any]:
        """Keyword arguments for ``Client.connect``: none (the target maps to the database)."""
        return {}
