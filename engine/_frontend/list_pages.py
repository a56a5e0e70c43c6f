"""``Client.list_workflows``'s answer: runs a page at a time, as temporalio's
``WorkflowExecutionAsyncIterator``.

A page is read only when iteration needs it, so listing every run of a large database costs
one page of memory at a time. Pages are cut by a key (the last run's start time and row id,
the order runs are listed in) rather than by an offset, so runs started while a listing goes
on do not shift its later pages. The key travels as ``next_page_token``.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Awaitable, Callable, Generator, Generic, Sequence, TypeVar

T = TypeVar("T")

# fetch(page_size, after) -> (the page, the key of its last row, or None when it is the last page)
Fetch = Callable[[int, "tuple[float, int] | None"], Awaitable["tuple[list[T], tuple[float, int] | None]"]]


def decode_token(token: bytes | None) -> tuple[float, int] | None:
    """The key a ``next_page_token`` holds (ValueError if this engine did not make it)."""
    if token is None:
        return None
    try:
        start_time, rowid = json.loads(token)
        return float(start_time), int(rowid)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"next_page_token {token[:40]!r} is not one this engine gave: pass the next_page_token of an "
            "earlier list_workflows() iterator, or leave it out to start from the newest run."
        ) from e


def encode_token(key: tuple[float, int]) -> bytes:
    return json.dumps(list(key)).encode()


class WorkflowExecutionAsyncIterator(Generic[T]):
    """Runs, newest first, read a page at a time as iteration goes (``async for``).

    As in temporalio: ``limit`` caps how many are yielded, ``page_size`` how many one read
    fetches; ``fetch_next_page``, ``current_page`` and ``next_page_token`` page by hand. This
    engine also lets you ``await`` it for a list of every run (up to ``limit``).
    """

    def __init__(
        self,
        fetch: Fetch[T],
        *,
        limit: int | None,
        page_size: int,
        next_page_token: bytes | None,
        history_of: Callable[[T], Awaitable[Any]] | None = None,
    ) -> None:
        self._fetch = fetch
        self._history_of = history_of
        self._limit = limit
        self._page_size = page_size
        self._after = decode_token(next_page_token)
        self._next_page_token = next_page_token
        self._current_page: Sequence[T] | None = None
        self._current_page_index = 0
        self._yielded = 0

    @property
    def current_page_index(self) -> int:
        """Index in ``current_page`` of the run the next ``__anext__`` returns."""
        return self._current_page_index

    @property
    def current_page(self) -> Sequence[T] | None:
        """The page read last, or None before the first read."""
        return self._current_page

    @property
    def next_page_token(self) -> bytes | None:
        """Where the next page starts (None after the last page); give it to a later
        ``list_workflows(next_page_token=...)`` to go on from there."""
        return self._next_page_token

    async def fetch_next_page(self, *, page_size: int | None = None) -> None:
        """Read the next page (``page_size`` overrides the iterator's for this read)."""
        size = page_size or self._page_size
        if self._limit is not None:
            size = max(0, min(size, self._limit - self._yielded))
        page, last = await self._fetch(size, self._after) if size else ([], None)
        self._current_page = page
        self._current_page_index = 0
        self._after = last
        self._next_page_token = encode_token(last) if last is not None else None

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        if self._limit is not None and self._yielded >= self._limit:
            raise StopAsyncIteration
        while self._current_page is None or self._current_page_index >= len(self._current_page):
            if self._current_page is not None and self._next_page_token is None:
                raise StopAsyncIteration
            await self.fetch_next_page()
        found = self._current_page[self._current_page_index]
        self._current_page_index += 1
        self._yielded += 1
        return found

    async def map_histories(self, **_options: Any) -> AsyncIterator[Any]:
        """The history of each run, in list order (``fetch_history`` of each), as temporalio's:
        ``async for history in client.list_workflows(...).map_histories()``."""
        if self._history_of is None:
            raise TypeError("This iterator does not list workflow runs: map_histories() has no histories to read.")
        async for found in self:
            yield await self._history_of(found)

    def __await__(self) -> Generator[Any, None, list[T]]:
        return self._every().__await__()

    async def _every(self) -> list[T]:
        return [found async for found in self]
