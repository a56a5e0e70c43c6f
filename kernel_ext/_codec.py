"""A history made readable for the viewers: payloads decoded with the client's payload codec.

A run of the kernel's engine comes decoded already (``await handle.snapshot()``); this is for
histories from elsewhere (a file, another server).

The database holds what the codec wrote (ciphertext, with an encryption codec). The viewers
are synchronous, the codec is async, so the history and the attempts' failures are decoded
here before a view is built. Without a codec nothing changes, and payloads a codec wrote that
the viewer cannot read show as ``<encrypted>``, as do failure messages the codec sealed (the
failure converter moves them into encoded attributes once a codec is set).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Sequence

from engine.converter import DataConverter, decode_failure_json, decode_history
from engine.history import History

if TYPE_CHECKING:
    from engine.client import ActivityAttempt


async def readable(
    history: History, attempts: Sequence[ActivityAttempt], data_converter: DataConverter
) -> tuple[History, tuple[ActivityAttempt, ...]]:
    """``history`` and ``attempts`` with their payloads decoded by ``data_converter``'s codec.

    Raises:
        PayloadError: the codec cannot decode them (a wrong key, say).
    """
    if data_converter.payload_codec is None:
        return history, tuple(attempts)
    decoded = []
    for attempt in attempts:
        if attempt.failure:
            attempt = dataclasses.replace(attempt, failure=await decode_failure_json(attempt.failure, data_converter))
        decoded.append(attempt)
    return await decode_history(history, data_converter), tuple(decoded)

