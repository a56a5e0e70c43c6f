"""What every command shares: the database option, opening a client, output, errors, exit codes."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, NoReturn, Sequence, TextIO

from engine._conversion.inputs import NEGATIVE_VALUE, NonStandardJSON, loads_input, non_standard_message
from engine.cli._errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CliError  # noqa: F401 (the commands import them from here)
from engine.cli._loader import import_module
from engine.client import Client
from engine.converter import DataConverter, PayloadCodec

DB_ENV = "DLAB_DB"
CODEC_ENV = "DLAB_CODEC"
# The notebooks' default too, so `dlab` run in a notebook's folder sees the kernel's runs.
DEFAULT_DB = ".durable/engine.db"

def one_line(message: str) -> str:
    """Engine messages may list problems on several lines; a terminal error gets one."""
    lines = [re.sub(r"^- ", "", line.strip()) for line in str(message).splitlines()]
    return "; ".join(line for line in lines if line).replace(":;", ":")


# ---------------------------------------------------------------------- argparse
class Parser(argparse.ArgumentParser):
    """Usage errors as one stderr line naming the help command, exit code 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_VALUE  # --input -1e3 / -Infinity are values

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"Error: {one_line(message)}. See '{self.prog} --help'.\n")


def add_common(parser: argparse.ArgumentParser, *, output: Sequence[str] = ("text", "json")) -> None:
    """``--db``, ``--output`` and ``--color`` on a leaf command (so they go after the verb)."""
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--db", metavar="PATH", default=None,
        help=f"Engine database file (default: ${DB_ENV}, else {DEFAULT_DB}).",
    )
    group.add_argument(
        "--codec", metavar="MODULE:FACTORY", default=None,
        help=f"Payload codec of an encrypted database (default: ${CODEC_ENV}): FACTORY() in MODULE returns a "
        "PayloadCodec or a DataConverter, e.g. myapp.codecs:make_codec.",
    )
    if output:
        group.add_argument(
            "-o", "--output", choices=output, default="text",
            help="Output format: " + ", ".join(output) + " (default text).",
        )
    group.add_argument(
        "--color", choices=("auto", "always", "never"), default="auto",
        help="Colour the text output: auto (only on a terminal, unless NO_COLOR is set), always, never.",
    )


def db_path(args: argparse.Namespace) -> str:
    return args.db or os.environ.get(DB_ENV) or DEFAULT_DB


async def open_client(args: argparse.Namespace, *, create: bool) -> Client:
    """Connect to the database; only commands that write runs may create it."""
    path = db_path(args)
    if path != ":memory:":
        target = Path(path).expanduser()
        if not create and not target.exists():
            source = "--db" if args.db else (f"${DB_ENV}" if os.environ.get(DB_ENV) else "the default")
            raise CliError(
                f"No engine database at {path!r} ({source}). Pass --db PATH or set {DB_ENV} to the file "
                "your workflows use; 'dlab workflow start' or 'dlab worker' creates a new one."
            )
        if create and path == DEFAULT_DB and not args.db and not os.environ.get(DB_ENV):
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # owner-only, as the notebooks make it
    converter = data_converter(args)
    return await Client.connect(path, identity=f"dlab-cli:{os.getpid()}", data_converter=converter)


def data_converter(args: argparse.Namespace) -> DataConverter:
    """The converter ``--codec`` (else ``$DLAB_CODEC``) names; the default one without either."""
    flag = getattr(args, "codec", None)
    spec = flag or os.environ.get(CODEC_ENV)
    if not spec:
        return DataConverter.default
    source = "--codec" if flag else f"${CODEC_ENV}"
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CliError(f"{source} {spec!r} is not MODULE:FACTORY: name a function that returns a PayloadCodec or a DataConverter, e.g. myapp.codecs:make_codec.", EXIT_USAGE)

    module = import_module(module_name, f"{source} {spec!r}: cannot import module {module_name!r}")
    try:
        factory = getattr(module, attribute)
    except AttributeError:
        names = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_") and getattr(v, "__module__", None) == module.__name__)
        raise CliError(f"{source} {spec!r}: module {module_name!r} has no {attribute!r} (it has: {', '.join(names) or 'nothing callable'}).", EXIT_USAGE) from None
    made = factory
    if callable(factory) and not isinstance(factory, (PayloadCodec, DataConverter)):
        try:
            made = factory()
        except Exception as e:  # noqa: BLE001 - user code: its error, on one line
            raise CliError(f"{source}: {spec}() raised {type(e).__name__}: {e}", EXIT_USAGE) from None
    if isinstance(made, DataConverter):
        return made
    if isinstance(made, PayloadCodec):
        return DataConverter(payload_codec=made)
    raise CliError(f"{source}: {spec}() returned {type(made).__name__}, not a PayloadCodec or a DataConverter (engine.converter).", EXIT_USAGE)


def json_inputs(texts: Sequence[str], flag: str = "--input") -> list[Any]:
    values = []
    for text in texts:
        try:
            values.append(loads_input(text))
        except json.JSONDecodeError as e:
            raise CliError(
                f"{flag} {text!r} is not valid JSON ({e.msg}, column {e.colno}): give each argument as JSON; "
                f"a string needs double quotes inside the shell's quotes, e.g. {flag} '\"{text}\"'.",
                EXIT_USAGE,
            ) from None
        except NonStandardJSON as e:
            raise CliError(non_standard_message(flag, text, str(e)), EXIT_USAGE) from None
    return values


_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> timedelta:
    """``30s``, ``5m``, ``1h30m``, ``250ms`` or plain seconds (argparse ``type=``)."""
    if re.fullmatch(r"\d+(\.\d*)?", text):
        return timedelta(seconds=float(text))
    parts = re.findall(r"(\d+(?:\.\d*)?)(ms|s|m|h|d)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: write e.g. 30s, 5m, 1h30m or 250ms")
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


# ---------------------------------------------------------------------- output
_COLOURS = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "cyan": "36", "bold": "1", "dim": "2"}
STATUS_COLOUR = {
    "Running": "cyan", "Completed": "green", "Failed": "red", "TimedOut": "red",
    "Terminated": "red", "Canceled": "yellow", "ContinuedAsNew": "blue",
}


def wants_colour(stream: TextIO, mode: str) -> bool:
    if mode != "auto":
        return mode == "always"
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@dataclass
class Out:
    """Where a command writes: stdout for results, stderr for errors, colour per stream."""

    stdout: TextIO
    stderr: TextIO
    colour: bool = False
    err_colour: bool = False

    @classmethod
    def for_args(cls, args: argparse.Namespace | None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> "Out":
        stdout = stdout or sys.stdout
        stderr = stderr or sys.stderr
        mode = getattr(args, "color", "auto") if args is not None else "auto"
        text = getattr(args, "output", "text") in ("text", None)
        return cls(stdout, stderr, text and wants_colour(stdout, mode), wants_colour(stderr, mode))

    def paint(self, text: str, colour: str | None) -> str:
        if not self.colour or not colour:
            return text
        return f"\x1b[{_COLOURS[colour]}m{text}\x1b[0m"

    def line(self, text: str = "") -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def error(self, message: str) -> None:
        label = "\x1b[31mError:\x1b[0m" if self.err_colour else "Error:"
        self.stderr.write(f"{label} {one_line(message)}\n")
        self.stderr.flush()

    def warn(self, message: str) -> None:
        """One ``Warning: ...`` line on stderr: the command worked, but something is missing."""
        label = "\x1b[33mWarning:\x1b[0m" if self.err_colour else "Warning:"
        self.stderr.write(f"{label} {one_line(message)}\n")
        self.stderr.flush()

    def json(self, value: Any, *, compact: bool = False) -> None:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":")) if compact else json.dumps(value, indent=2, ensure_ascii=False)
        self.line(text)

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[Any]], *, right: Sequence[int] = (), colours: dict[int, dict[str, str]] | None = None) -> None:
        """An aligned table; column ``i`` in ``right`` is right-aligned, ``colours[i]`` maps a
        cell's text to a colour (padding is applied before colouring, so columns stay aligned)."""
        cells = [[str(c) for c in row] for row in rows]
        widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]

        def render(row: Sequence[str], header: bool) -> None:
            out = []
            for i, (cell, width) in enumerate(zip(row, widths)):
                padded = cell.rjust(width) if i in right else cell.ljust(width)
                out.append(self.paint(padded, "bold" if header else (colours or {}).get(i, {}).get(cell)))
            self.line(("  " + "  ".join(out)).rstrip())

        render(list(headers), True)
        for row in cells:
            render(row, False)

    def fields(self, title: str, pairs: Sequence[tuple[str, Any]], *, colours: dict[str, str] | None = None) -> None:
        """A titled block of ``Name  value`` lines, the shape of the temporal CLI's cards."""
        self.line(self.paint(title, "bold"))
        width = max((len(k) for k, _ in pairs), default=0)
        for key, value in pairs:
            text = "" if value is None else str(value)
            self.line(f"  {key.ljust(width)}  {self.paint(text, (colours or {}).get(key))}".rstrip())


def iso(moment: datetime | None) -> str:
    """Seconds-precision UTC, as the temporal CLI's ``--time-format iso`` prints."""
    return "" if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_time(seconds: float) -> str:
    """``30ms``, ``2.01s``, ``9m57.32s``, ``2h5m0s`` (Go's duration style, as temporal prints)."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.2f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours:.0f}h{minutes:.0f}m{text}"
    return f"{minutes:.0f}m{text}" if minutes else text
