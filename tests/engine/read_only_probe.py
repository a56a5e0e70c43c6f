"""Run by tests/engine/test_read_only.py in a process that cannot write the database (as a
user who is not its owner would be): every read verb, every write verb, and the library's
reads; prints what happened as one JSON object.

    python tests/engine/read_only_probe.py DB
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import sys
from typing import Any

from engine import Client
from engine.cli import main
from engine.errors import StoreError


def dlab(*argv: str) -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return {"code": code, "out": out.getvalue(), "err": err.getvalue()}


async def library(db: str) -> dict[str, Any]:
    from engine import Worker
    from tests.cli import app

    client = await Client.connect(db)
    try:
        report: dict[str, Any] = {
            "list": sorted(d.id for d in await client.list_workflows()),
            "history": len((await client.get_workflow_handle("hello-1").fetch_history()).events),
            "describe": (await client.get_workflow_handle("collect-1").describe()).status.name,
            "result": await client.get_workflow_handle("hello-1").result(),
        }
        for name, action in {
            "start": lambda: client.start_workflow("Hello", "x", id="new-1", task_queue="q"),
            "signal": lambda: client.get_workflow_handle("collect-1").signal("add", "x"),
            "worker": lambda: Worker(client, task_queue="q", workflows=[app.Hello]).run(),
        }.items():
            try:
                await asyncio.wait_for(action(), timeout=5)
                report[name] = "no error"
            except StoreError as e:
                report[name] = f"{type(e).__name__}: {e}"
        return report
    finally:
        await client.close()


def probe(db: str) -> dict[str, Any]:
    try:
        with open(db, "r+b"):
            writable = True
    except PermissionError:
        writable = False
    report: dict[str, Any] = {"can_write_file": writable, "can_write_folder": os.access(os.path.dirname(db), os.W_OK)}
    common = ("--db", db)
    for verb in ("list", "show -w hello-1", "show -w boom-1 -o json", "describe -w collect-1", "result -w hello-1"):
        report[verb] = dlab("workflow", *verb.split(), *common)
    for verb in ("signal -w collect-1 --name add --input 1", "terminate -w collect-1", "start --type Hello -t q -w new-1"):
        report[verb] = dlab("workflow", *verb.split(), *common)
    report["library"] = asyncio.run(library(db))
    return report


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1])))
