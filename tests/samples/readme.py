"""The table of tests/samples/README.md, from tests/samples/samples.py (a test keeps them in
step): ``python tests/samples/readme.py --write`` rewrites it."""

from __future__ import annotations

import sys
from pathlib import Path

if str(Path(__file__).resolve().parents[2]) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.samples.samples import MISSING, SKIPPED, STARTERS, TESTS  # noqa: E402

README = Path(__file__).with_name("README.md")
BEGIN, END = "<!-- table -->", "<!-- /table -->"


def _row(kind: str, key: str) -> str:
    if key in SKIPPED:
        result, why = "skipped", SKIPPED[key]
    elif key in MISSING:
        result, why = "fails (xfail)", MISSING[key]
    else:
        result, why = "passes", ""
    return f"| {kind} | `{key.removeprefix('tests/')}` | {result} | {why} |"


def table() -> str:
    rows = [_row("test", t) for t in TESTS] + [_row("starter", n) for n in STARTERS]
    counts = {
        kind: (sum(1 for k in keys if k not in SKIPPED and k not in MISSING), sum(1 for k in keys if k in MISSING), sum(1 for k in keys if k in SKIPPED))
        for kind, keys in (("tests", TESTS), ("starters", tuple(STARTERS)))
    }
    summary = "; ".join(f"{kind}: {p} pass, {f} fail (xfail), {s} skipped" for kind, (p, f, s) in counts.items())
    return "\n".join([BEGIN, summary + ".", "", "| kind | sample | result | why |", "|---|---|---|---|", *rows, END])


def write() -> None:
    text = README.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    README.write_text(text[:start] + table() + text[end:])


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        print(table())
