"""Steps grouped into layers (steps started together run in parallel), and long runs of
identical steps collapsed into one (``echo x500``)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from kernel_ext._steps._read import format_event_ids, shorten
from kernel_ext._steps._rows import Row

_TOOLTIP_LIMIT = 1500
_STATUS_WORDS = {
    "ok": "completed",
    "retried": "completed after retries",
    "failed": "failed",
    "cancelled": "cancelled",
    "running": "running",
    "info": "",
}
# Kinds whose detail (an error message) is part of "identical" when collapsing; for the
# others the detail holds inputs and results, which differ between loop iterations.
_DETAIL_MATTERS = frozenset({"workflow_task_failed", "workflow_task_timed_out", "event"})


def _signature(row: Row) -> tuple[Any, ...] | None:
    if row["kind"] in ("start", "result", "more"):
        return None
    detail = row["detail"] if row["kind"] in _DETAIL_MATTERS else ""
    return (row["kind"], row["title"], row["status"], row["attempts"], row.get("injected", 0), detail)


def _merge(rows: Sequence[Row], parallel: bool) -> Row:
    first, last = rows[0], rows[-1]
    ids = sorted(i for row in rows for i in row["event_ids"])
    count = sum(row["count"] for row in rows)
    events = format_event_ids(ids, span=True)
    word = _STATUS_WORDS.get(first["status"], "")
    how = "in parallel" if parallel else "one after another"
    detail = f"{count} {first['kind'].replace('_', ' ')} steps {how}" + (f", all {word}" if word else "")
    tooltip = "\n".join(
        [f"{first['title']} repeated {count} times ({events})", f"first: {first['detail']}", f"last: {last['detail']}"]
    )
    return {
        **first,
        "title": f"{first['title']} x{count}",
        "event_ids": ids,
        "events": events,
        "attempts": sum(row["attempts"] for row in rows),
        "injected": sum(row.get("injected", 0) for row in rows),
        "detail": detail,
        "tooltip": shorten(tooltip, _TOOLTIP_LIMIT),
        "count": count,
    }


def _layers(rows: Iterable[Row]) -> list[list[Row]]:
    layers: list[list[Row]] = []
    by_batch: dict[int, list[Row]] = {}
    for row in map(dict, rows):
        batch = row.get("batch")
        if row["kind"] in ("start", "result") or batch is None:
            layers.append([row])
        elif batch in by_batch:
            by_batch[batch].append(row)
        else:
            by_batch[batch] = [row]
            layers.append(by_batch[batch])
    return layers


def _collapse_layer(layer: list[Row], threshold: int) -> list[Row]:
    groups: dict[Any, list[Row]] = {}
    for index, row in enumerate(layer):
        groups.setdefault(_signature(row) or ("unique", index), []).append(row)
    collapsed: list[Row] = []
    for group in groups.values():
        if len(group) > threshold:
            collapsed.append(_merge(group, True))
        else:
            collapsed.extend(group)
    return collapsed


_WORST_FIRST = ("failed", "retried", "cancelled", "running", "ok", "info")
_LONGEST_CYCLE = 4


def _merge_cycle(rows: Sequence[Row], period: int) -> Row:
    rounds = len(rows) // period
    ids = sorted(i for row in rows for i in row["event_ids"])
    events = format_event_ids(ids, span=True)
    statuses = {row["status"] for row in rows}
    status = next(s for s in _WORST_FIRST + tuple(statuses) if s in statuses)
    word = _STATUS_WORDS.get(status, "") if len(statuses) == 1 else ""
    titles = " → ".join(row["title"] for row in rows[:period])
    first_round = "; ".join(f"{row['title']}: {row['detail']}" for row in rows[:period])
    last_round = "; ".join(f"{row['title']}: {row['detail']}" for row in rows[-period:])
    return {
        **rows[0],
        "kind": "cycle",
        "title": f"{titles} x{rounds}",
        "status": status,
        "event_ids": ids,
        "events": events,
        "attempts": sum(row["attempts"] for row in rows),
        "detail": f"a loop of {period} steps, {rounds} rounds" + (f", all {word}" if word else ""),
        "tooltip": shorten(
            f"{titles}, repeated {rounds} times ({events})\nfirst round: {first_round}\nlast round: {last_round}",
            _TOOLTIP_LIMIT,
        ),
        "count": sum(row["count"] for row in rows),
        "batch": None,
        "links": [],
    }


def _collapse_cycles(layers: list[list[Row]], threshold: int) -> list[list[Row]]:
    """Replace more than ``threshold`` repeats of a block of 2 to 4 different steps, one
    after another (a loop's body: ``sleep 30d``, ``charge``), by one row."""
    signatures = [_signature(layer[0]) if len(layer) == 1 else None for layer in layers]
    out: list[list[Row]] = []
    i = 0
    while i < len(layers):
        best: tuple[int, int] | None = None  # (period, rounds)
        for period in range(2, _LONGEST_CYCLE + 1):
            block = signatures[i : i + period]
            if len(block) < period or None in block or len(set(block)) == 1:
                continue
            rounds = 1
            while signatures[i + rounds * period : i + (rounds + 1) * period] == block:
                rounds += 1
            if rounds > threshold and (best is None or rounds * period > best[0] * best[1]):
                best = (period, rounds)
        if best is None:
            out.append(layers[i])
            i += 1
            continue
        period, rounds = best
        out.append([_merge_cycle([layer[0] for layer in layers[i : i + period * rounds]], period)])
        i += period * rounds
    return out


def collapsed_layers(rows: Iterable[Row], threshold: int) -> list[list[Row]]:
    layers = [_collapse_layer(layer, threshold) for layer in _layers(rows)]
    result: list[list[Row]] = []
    run: list[Row] = []

    def flush() -> None:
        if len(run) > threshold:
            result.append([_merge(run, False)])
        else:
            result.extend([row] for row in run)
        run.clear()

    for layer in layers:
        sig = _signature(layer[0]) if len(layer) == 1 else None
        if sig is not None and run and _signature(run[0]) == sig:
            run.append(layer[0])
            continue
        flush()
        if sig is not None:
            run.append(layer[0])
        else:
            result.append(layer)
    flush()
    result = _collapse_cycles(result, threshold)
    for number, layer in enumerate(result, start=1):
        for row in layer:
            row["step"] = number
    return result


def collapse_rows(rows: Iterable[Row], *, threshold: int = 5) -> list[Row]:
    """Collapse runs of more than ``threshold`` identical steps into one row each.

    Identical means same kind, title (activity type, timer duration, ...), status and
    attempts, one after another or in parallel. The merged row's title ends in
    ``x<count>`` and ``count`` says how many steps it stands for. A loop whose body is 2
    to 4 different steps, repeated more than ``threshold`` times, becomes one row of kind
    ``cycle`` (``sleep 30d → charge x12``). Every row gets a ``step`` number; rows that
    ran in parallel share it.
    """
    return [row for layer in collapsed_layers(rows, threshold) for row in layer]
