"""A worker's build id: what Temporal's auto-reset points are keyed by.

temporalio's worker sends a build id with every completed workflow task (by default a hash of
all the code its process has loaded); the server records it as the task's ``workerVersion``
and keeps one reset point per build id. The engine's worker hashes the code it serves: the
bytecode, names and constants of every function of its workflow classes and activities
(not file names or line numbers, so re-running an unchanged notebook cell keeps the id, and
fixing a bug in the workflow gives a new one).
"""

from __future__ import annotations

import hashlib
import inspect
import types
from typing import Any, Callable, Iterable


def _stable(const: Any) -> str:
    """A constant's text, the same in every process (a frozenset's order follows string hashing,
    which changes per process: ``x in {"a", "b"}`` compiles to one)."""
    if isinstance(const, frozenset):
        return "frozenset(" + ",".join(sorted(_stable(c) for c in const)) + ")"
    if isinstance(const, tuple):
        return "(" + ",".join(_stable(c) for c in const) + ")"
    return repr(const)


def _code_parts(code: types.CodeType) -> Iterable[bytes]:
    yield code.co_code
    yield repr(code.co_names).encode()
    yield repr(code.co_varnames).encode()
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_parts(const)
        else:
            yield _stable(const).encode()


def _functions(item: Any) -> Iterable[Any]:
    if inspect.isclass(item):
        for cls in item.__mro__:
            if cls.__module__ in ("builtins", "typing", "abc"):
                continue
            for name, member in sorted(vars(cls).items()):
                yield from _functions_of_member(member)
    else:
        yield from _functions_of_member(item)


def _functions_of_member(member: Any) -> Iterable[Any]:
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    if isinstance(member, property):
        member = member.fget
    seen = set()
    while member is not None and id(member) not in seen:
        seen.add(id(member))
        if isinstance(getattr(member, "__code__", None), types.CodeType):
            yield member
        member = getattr(member, "__wrapped__", None)


def code_build_id(workflows: Iterable[type], activities: Iterable[Callable[..., Any]] = ()) -> str:
    """A hex digest (32 characters, like temporalio's) of the code of ``workflows`` and ``activities``."""
    digest = hashlib.md5(usedforsecurity=False)  # an identifier, not a secret
    for item in [*workflows, *activities]:
        digest.update(getattr(item, "__qualname__", repr(item)).encode())
        for function in _functions(item):
            digest.update(function.__qualname__.encode())
            for part in _code_parts(function.__code__):
                digest.update(part)
    return digest.hexdigest()
