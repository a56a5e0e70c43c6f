"""Lesson 12 (data conversion): encrypt what the engine stores."""

from __future__ import annotations

import base64
import json
from typing import Any

from kernel_ext.exercises import Check, exercise

SECRET = "sphenoid osteochondroma"
# Long and repetitive, as clinical notes are: a compression codec shrinks it (and hides the word).
DIAGNOSIS = SECRET + "; " + "; ".join(["referred for imaging, follow-up in six weeks"] * 4)


def _payloads(value: Any, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        if "data" in value and "encoding" in (value.get("metadata") or {}):
            found.append(value)
        for item in value.values():
            _payloads(item, found)
    elif isinstance(value, list):
        for item in value:
            _payloads(item, found)
    return found


def _raw(conn: Any, run_id: str) -> list[tuple[int, str, str]]:
    """(event id, encoding, data) of every payload of the run, as the database holds it."""
    rows = conn.execute("SELECT event_id, attributes FROM history WHERE run_id = ? ORDER BY event_id", (run_id,)).fetchall()
    found = []
    for event_id, attributes in rows:
        for payload in _payloads(json.loads(attributes), []):
            encoding = base64.b64decode(payload["metadata"]["encoding"]).decode("utf-8", "replace")
            data = base64.b64decode(payload.get("data") or "").decode("utf-8", "replace")
            found.append((int(event_id), encoding, data))
    return found


@exercise(
    "encrypt the clinic's records",
    concept="data converters and payload codecs: encryption",
    hint="Make a DataConverter(payload_codec=EncryptionCodec(key)) and give it to the kernel: "
    "%config DurableLab.data_converter = that_converter.",
)
async def encrypted_records(c: Check) -> None:
    run = await c.run("AdmitPatient", {"name": "Hypatia", "diagnosis": DIAGNOSIS}, task_queue="clinic", workflow_id="admit-check")
    c.require_completed(run, "the run completed (the worker reads what it stored)")
    raw = await c.client.store.read(_raw, run.handle.run_id)
    readable = sorted({event_id for event_id, _, data in raw if SECRET in data})
    c.require(
        not readable,
        "no payload in the database holds the diagnosis in clear text",
        f"the diagnosis is readable in the database, in the payloads of event(s) {readable}",
    )
    encodings = sorted({encoding for _, encoding, _ in raw})
    c.expect(
        encodings == ["binary/encrypted"],
        f"all {len(raw)} payloads of the run are stored binary/encrypted",
        f"the run's payloads are stored as {', '.join(encodings)}, not all binary/encrypted",
        hint="Compression is not encryption: anyone can decompress a binary/zlib payload. Use an EncryptionCodec "
        "(after the compression, in a CodecChain, if you want both).",
    )
