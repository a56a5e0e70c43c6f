"""What every magic shares: parsing its verb and flags (a usage error names the fix), JSON
inputs, durations, its help text, and ``Pending``, the work a magic hands to the kernel's
event loop.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import timedelta
from typing import Any, Awaitable, Callable, Generator, Mapping

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser
from IPython.utils.process import arg_split

from engine._conversion.inputs import NEGATIVE_VALUE, NonStandardJSON, loads_input, non_standard_message


class Pending:
    """What a durable-lab line magic returns: ``await`` it. The input transformer does that for
    you; you see this object only where it could not (inside a ``def``, say)."""

    def __init__(self, what: str, make: Callable[[], Awaitable[Any]]) -> None:
        self.what = what
        self._make = make  # the coroutine is made only when awaited: no "never awaited" warnings

    def __await__(self) -> Generator[Any, None, Any]:
        return self._make().__await__()

    def __repr__(self) -> str:
        return f"<pending {self.what}: await it to run it>"


# ---------------------------------------------------------------------- parsing
class _Parser(MagicArgumentParser):
    """One verb's flags. Splits like a shell (``--input '"Ada"'`` gives ``"Ada"``, as with the
    temporal CLI) and reports misuse as ``UsageError`` with the usage line."""

    def __init__(self, prog: str, description: str) -> None:
        super().__init__(prog=prog, description=description, add_help=False, formatter_class=argparse.RawDescriptionHelpFormatter)
        self._negative_number_matcher = NEGATIVE_VALUE  # --input -1e3 / -Infinity are values

    def usage_line(self) -> str:
        return self.format_usage().strip()

    def error(self, message: str) -> Any:
        raise UsageError(f"{message}\n{self.usage_line()}")

    def parse(self, text: str) -> argparse.Namespace:
        try:
            argv = arg_split(text, posix=True, strict=True)
        except ValueError as e:
            self.error(f"cannot split the arguments: {e}")
        return self.parse_args(argv)


def _verb(magic: str, description: str, *flags: tuple[tuple[str, ...], dict[str, Any]]) -> _Parser:
    parser = _Parser(f"%{magic}", description)
    for names, options in flags:
        parser.add_argument(*names, **options)
    return parser


_ID = (("--workflow-id", "-w"), {"required": True, "metavar": "ID", "help": "Workflow id."})


_RUN = (("--run-id", "-r"), {"metavar": "RUN", "help": "Run id (default: the latest run)."})


_INPUT = (("--input", "-i"), {"action": "append", "default": [], "metavar": "JSON", "help": "One argument as JSON; repeat for more."})


def _split_verb(magic: str, verbs: Mapping[str, _Parser], line: str) -> tuple[str, argparse.Namespace, _Parser]:
    verb, _, rest = line.strip().partition(" ")
    listing = ", ".join(verbs)
    if not verb:
        raise UsageError(f"%{magic} needs a verb: {listing}. See %{magic}? for each verb's flags.")
    parser = verbs.get(verb)
    if parser is None:
        raise UsageError(f"Unknown verb {verb!r} for %{magic}: use one of {listing}. See %{magic}? for help.")
    return verb, parser.parse(rest), parser


def _json_inputs(parser: _Parser, texts: list[str]) -> list[Any]:
    values = []
    for text in texts:
        try:
            values.append(loads_input(text))
        except json.JSONDecodeError as e:
            parser.error(
                f"--input {text!r} is not valid JSON ({e.msg}, column {e.colno}). Give each argument as "
                f"JSON; a string needs double quotes inside the shell quotes: --input '\"{text}\"'"
            )
        except NonStandardJSON as e:
            parser.error(non_standard_message("--input", text, str(e)))
    return values


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?)(ms|s|m|h|d)")


_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(parser: _Parser, flag: str, text: str | None) -> timedelta | None:
    """``30s``, ``5m``, ``1h30m``, ``1.5s`` or plain seconds, as the temporal CLI takes them."""
    if text is None:
        return None
    if re.fullmatch(r"\d+(\.\d*)?", text):
        return timedelta(seconds=float(text))
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        parser.error(f"{flag} {text!r} is not a duration: write e.g. 30s, 5m, 1h30m.")
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


def _help(title: str, parsers: Mapping[str, _Parser], tail: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a magic a docstring listing every verb with its flags (what ``%magic?`` shows)."""

    def document(fn: Callable[..., Any]) -> Callable[..., Any]:
        sections = [title, ""]
        for parser in parsers.values():
            sections.append(parser.format_help().rstrip())
            sections.append("")
        fn.__doc__ = "\n".join(sections) + tail
        return fn

    return document
