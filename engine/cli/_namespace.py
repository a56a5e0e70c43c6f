"""``dlab namespace describe|list``: a database's namespaces and their ids (``temporal operator
namespace describe`` shows the same fields of a server's)."""

from __future__ import annotations

import argparse
from typing import Any

from engine._history import namespaces
from engine._history.reset_points import RETENTION
from engine.cli._common import EXIT_OK, Out, add_common, open_client


def register(sub: Any) -> None:
    group = sub.add_parser(
        "namespace", help="Show the database's namespaces and their ids.",
        description="Show the database's namespaces and their ids. A namespace is registered the first time it is "
        "used and keeps its id (a UUID, which child, signal and cancel events carry) for the life of the file.",
    )
    verbs = group.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    p = verbs.add_parser("describe", help="Print a namespace's name and id.", description="Print a namespace's name and id (registering it if it was not).")
    p.add_argument("name", nargs="?", default="default", metavar="NAME", help="Namespace name (default: default).")
    p.add_argument("-n", "--namespace", dest="flag_name", metavar="NAME", help="Namespace name, as the temporal CLI takes it.")
    p.set_defaults(handler=describe)
    add_common(p)
    p = verbs.add_parser("list", help="List the registered namespaces.", description="List the registered namespaces.")
    p.set_defaults(handler=list_namespaces)
    add_common(p)


def _document(info: namespaces.NamespaceInfo) -> dict[str, Any]:
    return {
        "namespaceInfo": {"name": info.name, "state": "NAMESPACE_STATE_REGISTERED", "id": info.id},
        "config": {"workflowExecutionRetentionTtl": f"{int(RETENTION.total_seconds())}s"},
        "isGlobalNamespace": False,
    }


async def describe(args: argparse.Namespace, out: Out) -> int:
    name = args.flag_name or args.name
    client = await open_client(args, create=False)
    try:
        found = await client.store.read(namespaces.describe, name)
        if found is None and not client.store.read_only:
            found = await client.store.run(namespaces.register, name)
    finally:
        await client.close()
    if found is None:
        out.error(f"Namespace {name!r} is not registered in this read-only database (a namespace is registered on first use).")
        return 1
    if args.output == "json":
        out.json(_document(found))
    else:
        out.fields("Namespace:", [
            ("NamespaceInfo.Name", found.name), ("NamespaceInfo.Id", found.id), ("NamespaceInfo.State", "Registered"),
            ("Config.WorkflowExecutionRetentionTtl", "24h0m0s"),
        ])
    return EXIT_OK


async def list_namespaces(args: argparse.Namespace, out: Out) -> int:
    client = await open_client(args, create=False)
    try:
        found = await client.store.read(namespaces.list_all)
    finally:
        await client.close()
    if args.output == "json":
        out.json([_document(info) for info in found])
    else:
        out.table(("Name", "Id"), [(info.name, info.id) for info in found])
    return EXIT_OK
