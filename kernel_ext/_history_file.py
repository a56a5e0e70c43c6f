"""``%workflow show --file PATH``: a history from a file, in the views a run of the kernel gets.

The file is Temporal's JSON history: what ``temporal workflow show -o json`` prints, what the
Web UI downloads (``{"history": {...}}``), or what ``%workflow show -o json`` and
``dlab workflow show --output json`` write. So a run of a real Temporal cluster opens here as
a table, a graph or a saga without any server, and the engine's runs open in Temporal's tools.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.converter import DataConverter
from engine.errors import PayloadError
from engine.history import History, HistoryFormatError, load_history
from kernel_ext._codec import readable
from kernel_ext._session_errors import SessionError
from kernel_ext._session_results import JsonDocument

# The outputs of %workflow show that need only the history (chain needs the other runs).
FILE_OUTPUTS = ("table", "json", "graph", "saga")


class HistoryFileError(SessionError):
    """The file cannot be shown: the message says why and what to do."""


async def show_history_file(
    path: str, *, output: str = "table", detailed: bool = False, data_converter: DataConverter = DataConverter.default
) -> Any:
    """The history in ``path`` as ``output`` shows it (see ``FILE_OUTPUTS``); its workflow id is
    the file name without ``.json``, as Temporal's format does not record it."""
    if output not in FILE_OUTPUTS:
        raise HistoryFileError(
            f"--output {output} needs the run's other runs or attempts, which a file does not hold; "
            f"with --file use {', '.join(FILE_OUTPUTS)}."
        )
    file = Path(path).expanduser()
    if not file.is_file():
        raise HistoryFileError(
            f"No history file {str(file)!r}. Download one with `temporal workflow show -w ID -o json > FILE.json` "
            "(or the Web UI's download), or write one with %workflow show -w ID -o json."
        )
    try:
        history = load_history(file)
    except HistoryFormatError as e:
        raise HistoryFileError(str(e)) from None
    return await show_history(history, output=output, detailed=detailed, data_converter=data_converter, source=f"from {file.name}")


async def show_history(
    history: History, *, output: str, detailed: bool, data_converter: DataConverter, source: str
) -> Any:
    """A history that did not come from the kernel's engine (a file, a Temporal server) in its views."""
    from kernel_ext import display

    if output == "json":
        return JsonDocument(history.to_json_dict())
    try:
        history, _ = await readable(history, (), data_converter)
    except PayloadError as e:
        raise HistoryFileError(f"{e} Set the data converter that wrote it: %config DurableLab.data_converter = ...") from None
    title = f"{history.workflow_id} ({history.workflow_type}), {source}"
    if output == "table":
        return display.EventTable(history, detailed=detailed)
    if output == "saga":
        return display.SagaView(history, (), title=title)
    return display.RunView(history, (), title=title)
