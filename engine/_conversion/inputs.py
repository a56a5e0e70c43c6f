"""Values a person types as command-line arguments (``dlab`` flags and the notebook magics').

``--input`` takes JSON, read strictly: Python's json module also reads ``NaN``, ``Infinity``
and ``-Infinity`` and writes them back, but that text is not JSON to other readers (temporal's
CLI, the Web UI, the Go and TypeScript SDKs). And argparse takes ``-1e3`` or ``-Infinity``
after a flag for another flag unless told which negative values there are.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["NEGATIVE_VALUE", "NonStandardJSON", "loads_input", "non_standard_message"]

# For argparse's _negative_number_matcher: its own takes "-1" and "-.5" but not "-1e3".
NEGATIVE_VALUE = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^-(Infinity|NaN)$")


class NonStandardJSON(ValueError):
    """JSON text with ``NaN`` or ``Infinity``; the message is the constant."""


def _refuse(constant: str) -> Any:
    raise NonStandardJSON(constant)


def loads_input(text: str) -> Any:
    """Parse one ``--input`` value as strict JSON.

    Raises:
        json.JSONDecodeError: not JSON at all.
        NonStandardJSON: ``NaN``, ``Infinity`` or ``-Infinity`` somewhere in it.
    """
    return json.loads(text, parse_constant=_refuse)


def non_standard_message(flag: str, text: str, constant: str) -> str:
    """The one-line error for a :class:`NonStandardJSON` value."""
    return (
        f"{flag} {text!r} is not standard JSON: {constant} is not a JSON number, and Temporal's other "
        "SDKs and tools could not read it; give a number, a string or null instead."
    )
