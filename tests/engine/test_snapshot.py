"""Snapshots of workflow values: bounded text, never an exception, user reprs guarded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine._debugger.snapshot import MAX_LENGTH, safe_repr, snapshot_mapping

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=400) | st.binary(max_size=50),
    lambda inner: st.lists(inner, max_size=20) | st.dictionaries(st.text(max_size=10), inner, max_size=20) | st.tuples(inner, inner),
    max_leaves=60,
)


@settings(max_examples=150, deadline=None)
@given(values)
def test_any_builtin_value_gives_bounded_text(value: Any) -> None:
    text = safe_repr(value)
    assert isinstance(text, str) and 0 < len(text) <= MAX_LENGTH


class Exploding:
    def __repr__(self) -> str:
        raise RuntimeError("no")


class Exiting:
    def __repr__(self) -> str:
        raise SystemExit(3)


class NotText:
    def __repr__(self) -> Any:
        return 42


class Recursing:
    def __repr__(self) -> str:
        return repr(self)


@dataclass
class Order:
    id: int
    lines: list[Any] = field(default_factory=list)
    secret: str = field(default="x", repr=False)


def test_user_reprs_are_guarded_and_dataclasses_bounded() -> None:
    for value in (Exploding(), Exiting(), NotText(), Recursing()):
        assert safe_repr(value).startswith(f"<{type(value).__name__} at 0x")
    calls: list[int] = []
    assert safe_repr(Exploding(), guard=lambda: calls.append(1)).startswith("<Exploding")
    assert calls == [1]  # the guard runs after every user repr, failed or not
    order = Order(7, [Exploding(), Order(8)])
    text = safe_repr(order)
    assert text.startswith("Order(id=7, lines=[<Exploding at 0x") and "secret" not in text and "Order(id=8, lines=[])" in text
    assert len(safe_repr(Order(1, ["y" * 1000] * 50))) <= MAX_LENGTH


def test_mappings_skip_dunders_and_cap_names() -> None:
    values = {"__module__": "m", "a": 1, **{f"n{i}": i for i in range(60)}}
    snap = snapshot_mapping(values, skip=lambda name, _: name == "a")
    assert "__module__" not in snap and "a" not in snap and snap["n0"] == "0"
    assert len(snap) == 41 and snap["…"] == "20 more"
