"""The payload and failure converters: temporalio's bytes and semantics, dataclasses by type hints,
inputs that grow without breaking recorded runs, and custom converters end to end."""

from __future__ import annotations

import dataclasses
import enum
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal, Optional, Union

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import activity, workflow
from engine.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultFailureConverter,
    DefaultFailureConverterWithEncodedAttributes,
    DefaultPayloadConverter,
    EncodingPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
    Payload,
    PayloadConverter,
    value_to_type,
)
from engine.errors import ActivityError, ApplicationError, PayloadError, WorkflowFailureError
from engine.history import encode_payload
from engine.testing import WorkflowEnvironment
from engine.worker import Worker


# ---------------------------------------------------------------------- types used below
class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Size(enum.IntEnum):
    S = 1
    L = 3


class Kind(str, enum.Enum):
    BOOK = "book"
    GAME = "game"


@dataclasses.dataclass
class Item:
    sku: str
    price: float
    kind: Kind = Kind.BOOK


@dataclasses.dataclass
class Address:
    street: str
    city: str


@dataclasses.dataclass
class Order:
    id: str
    items: list[Item]
    ship_to: Address
    placed: datetime
    note: Optional[str] = None
    tags: dict[str, Item] = dataclasses.field(default_factory=dict)
    colour: Colour = Colour.RED
    size: Size = Size.S
    ref: uuid.UUID = uuid.UUID(int=0)


ORDER = Order(
    id="o-1",
    items=[Item("b-1", 12.5), Item("g-2", 60, Kind.GAME)],
    ship_to=Address("Rue de l'Été 5", "Genève"),
    placed=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    note="ring twice",
    tags={"gift": Item("b-9", 3.0)},
    colour=Colour.GREEN,
    size=Size.L,
    ref=uuid.UUID("12345678-1234-5678-1234-567812345678"),
)

pc = PayloadConverter.default


def _round_trip(value: Any, hint: Any) -> Any:
    return pc.from_payload(pc.to_payload(value), hint)


# ---------------------------------------------------------------------- bytes = temporalio's
def _theirs(value: Any) -> Any:
    from temporalio.converter import DefaultPayloadConverter as Theirs

    return Theirs().to_payloads([value])[0]


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"\x00raw",
        {"b": 1, "a": [1, 2], "c": {"z": None, "y": True}},
        "héllo wörld ✓ 日本語 😀",
        {"ü": "é", "\u2028": "\x7f"},
        [1.5, -0.0, 10**30, ""],
        ORDER.items[0],
        Address("x", "y"),
        datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=timezone(timedelta(hours=2))),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        (1, "two"),
        Size.L,
        Kind.GAME,
    ],
)
def test_payload_bytes_match_temporalio(value: Any) -> None:
    ours, theirs = pc.to_payload(value), _theirs(value)
    assert ours.data == theirs.data
    assert ours.metadata == dict(theirs.metadata)


def test_non_ascii_is_escaped_like_temporalio() -> None:
    payload = pc.to_payload({"city": "Genève"})
    assert payload.data == b'{"city":"Gen\\u00e8ve"}'
    assert payload.data.isascii()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(_json)
def test_json_bytes_match_temporalio_property(value: Any) -> None:
    assert pc.to_payload(value).data == _theirs(value).data
    assert pc.from_payload(pc.to_payload(value)) == value


def test_history_encode_payload_is_the_converters_encoding() -> None:
    value = {"z": [1, "é"], "a": None}
    assert Payload.from_json(encode_payload(value)) == pc.to_payload(value)


def test_payload_json_form() -> None:
    assert pc.to_payload(None).to_json() == {"metadata": {"encoding": "YmluYXJ5L251bGw="}}  # proto JSON omits empty data
    payload = pc.to_payload("x")
    assert payload.to_json() == {"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "Ingi"}
    assert Payload.from_json(payload.to_json()) == payload
    with pytest.raises(PayloadError, match="payload data '!!' is not valid base64"):
        Payload.from_json({"metadata": {}, "data": "!!"})


@given(st.dictionaries(st.text(max_size=20), st.binary(max_size=40), max_size=4), st.binary(max_size=200))
def test_payload_protobuf_form_matches_temporalio(metadata: dict[str, bytes], data: bytes) -> None:
    from temporalio.api.common.v1 import Payload as TheirPayload

    ours = Payload(metadata, data)
    theirs = TheirPayload.FromString(ours.SerializeToString())
    assert dict(theirs.metadata) == metadata and theirs.data == data
    assert Payload.FromString(TheirPayload(metadata=metadata, data=data).SerializeToString()) == ours


# ---------------------------------------------------------------------- decoding by type hints
def test_nested_dataclasses_enums_datetimes_round_trip() -> None:
    assert _round_trip(ORDER, Order) == ORDER
    assert _round_trip([ORDER, ORDER], list[Order]) == [ORDER, ORDER]
    assert _round_trip({"a": ORDER}, dict[str, Order]) == {"a": ORDER}
    assert _round_trip(ORDER, Optional[Order]) == ORDER
    assert _round_trip(None, Optional[Order]) is None


def test_decoding_agrees_with_temporalio() -> None:
    from temporalio.converter import DefaultPayloadConverter as Theirs

    theirs = Theirs()
    for value, hint in [
        (ORDER.items, list[Item]),
        ({"1": 2, "3": 4}, dict[int, int]),
        ([1, 2, 3], tuple[int, ...]),
        ([1, "a"], tuple[int, str]),
        ({"sku": "x", "price": 1, "unknown": True}, Item),
        (Size.L, Size),
        (Kind.BOOK, Kind),
        (None, Optional[int]),
        ("a", Literal["a", "b"]),
        ([3, 1], set[int]),
    ]:
        data = pc.to_payload(value)
        assert pc.from_payload(data, hint) == theirs.from_payloads([_theirs(value)], [hint])[0]


def test_old_payloads_missing_fields_take_defaults() -> None:
    # Written by an older version of Order: no note, tags, colour, size, ref.
    old = {"id": "o-0", "items": [{"sku": "a", "price": 1}], "ship_to": {"street": "s", "city": "c"}, "placed": "2025-05-05T00:00:00+00:00"}
    order = value_to_type(Order, old)
    assert order.note is None and order.tags == {} and order.colour is Colour.RED and order.items[0].kind is Kind.BOOK
    assert isinstance(order.items[0].price, float) and order.placed.year == 2025


def test_new_payloads_with_unknown_keys_still_decode() -> None:
    newer = {"street": "s", "city": "c", "zip": "1200", "geo": {"lat": 1}}
    assert value_to_type(Address, newer) == Address("s", "c")


def test_missing_required_field_says_to_add_a_default() -> None:
    with pytest.raises(TypeError, match=r"at \.ship_to: field 'city' of Address is missing and has no default.*give it a default"):
        value_to_type(Order, {"id": "o", "items": [], "ship_to": {"street": "s"}, "placed": "2025-05-05T00:00:00"})


def test_mismatch_names_the_place() -> None:
    with pytest.raises(TypeError, match=r"at \.items\[1\]\.price: expected int or float, found str 'ten'"):
        value_to_type(Order, {"id": "o", "items": [{"sku": "a", "price": 1}, {"sku": "b", "price": "ten"}],
                              "ship_to": {"street": "s", "city": "c"}, "placed": "2025-05-05T00:00:00"})
    with pytest.raises(TypeError, match=r"'blue' is not a value of enum Colour \('red', 'green'\)"):
        value_to_type(Colour, "blue")
    with pytest.raises(TypeError, match="fits none of"):
        value_to_type(Union[int, Address], "x")


def test_more_hints() -> None:
    assert value_to_type(date, "2026-03-04") == date(2026, 3, 4)
    assert value_to_type(bytes, [1, 2]) == b"\x01\x02"
    assert value_to_type(int | None, None) is None
    assert value_to_type(dict[Size, str], {"1": "small"}) == {Size.S: "small"}
    assert value_to_type(frozenset[str], ["a"]) == frozenset({"a"})
    assert value_to_type(Any, {"x": 1}) == {"x": 1}

    @dataclasses.dataclass(frozen=True)
    class Frozen:
        a: int
        b: int = dataclasses.field(init=False, default=0)

    assert value_to_type(Frozen, {"a": 1, "b": 5}).b == 5


def test_unresolvable_field_types_are_a_clear_error() -> None:
    def make() -> type:
        @dataclasses.dataclass
        class Inner:
            x: int

        @dataclasses.dataclass
        class Outer:
            inner: Inner  # a string annotation naming a class local to make()

        return Outer

    with pytest.raises(TypeError, match=r"cannot resolve the field types of dataclass .*Outer.*NameError.*module level"):
        value_to_type(make(), {"inner": {"x": 1}})


def test_unknown_encoding_says_to_give_the_codec() -> None:
    with pytest.raises(PayloadError, match=r"Unknown payload encoding 'binary/encrypted'.*data_converter=DataConverter\(payload_codec"):
        pc.from_payload(Payload({"encoding": b"binary/encrypted"}, b"..."))


# ---------------------------------------------------------------------- converters as objects
def test_data_converter_default_and_api() -> None:
    assert DataConverter.default.payload_codec is None
    assert isinstance(DataConverter.default.payload_converter, DefaultPayloadConverter)
    assert isinstance(DataConverter.default.failure_converter, DefaultFailureConverter)
    custom = DataConverter(failure_converter_class=DefaultFailureConverterWithEncodedAttributes)
    assert isinstance(custom.failure_converter, DefaultFailureConverterWithEncodedAttributes)


async def test_data_converter_encode_decode() -> None:
    converter = DataConverter.default
    payloads = await converter.encode([ORDER, None, b"x"])
    assert [p.metadata["encoding"] for p in payloads] == [b"json/plain", b"binary/null", b"binary/plain"]
    assert await converter.decode(payloads, [Order, None, bytes]) == [ORDER, None, b"x"]


async def test_failure_converter_round_trip_and_encoded_attributes() -> None:
    error = ApplicationError("card declined for Alice", {"amount": 5}, type="Declined", non_retryable=True)
    error.__cause__ = ValueError("bad digits")
    plain = await DataConverter.default.encode_failure(error)
    assert plain["message"] == "card declined for Alice" and plain["cause"]["message"] == "bad digits"
    hidden = DataConverter(failure_converter_class=DefaultFailureConverterWithEncodedAttributes)
    failure = await hidden.encode_failure(error)
    assert failure["message"] == "Encoded failure" and failure["stackTrace"] == ""
    assert failure["cause"]["message"] == "Encoded failure"
    assert "Alice" not in str(failure) and "bad digits" not in str(failure)
    back = await hidden.decode_failure(failure)
    assert isinstance(back, ApplicationError) and back.message == "card declined for Alice"
    assert back.type == "Declined" and back.non_retryable and back.details == ({"amount": 5},)
    assert str(back.__cause__) == "bad digits"


# ---------------------------------------------------------------------- end to end, by signature
@activity.defn
async def total(order: Order) -> dict[str, Item]:
    assert isinstance(order.items[0], Item) and isinstance(order.placed, datetime)
    return {item.sku: item for item in order.items}


@workflow.defn
class PlaceOrder:
    @workflow.run
    async def run(self, order: Order) -> list[Item]:
        assert isinstance(order, Order) and isinstance(order.ship_to, Address) and order.colour is Colour.GREEN
        by_sku = await workflow.execute_activity(total, order, start_to_close_timeout=timedelta(seconds=5))
        assert isinstance(by_sku["g-2"], Item) and by_sku["g-2"].kind is Kind.GAME
        return list(by_sku.values())


async def test_workflow_and_activity_convert_by_their_signatures() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with env, Worker(env.client, task_queue="q", workflows=[PlaceOrder], activities=[total]):
        result = await env.client.execute_workflow(PlaceOrder.run, ORDER, id="order", task_queue="q")
    assert result == ORDER.items


@workflow.defn
class Greet:
    @workflow.run
    async def run(self, who: Address) -> str:
        return f"{who.street} in {who.city}"


async def test_old_and_new_callers_reach_the_same_workflow() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with env, Worker(env.client, task_queue="q", workflows=[Greet]):
        # A newer caller sends a field this workflow does not know yet.
        newer = await env.client.execute_workflow("Greet", {"street": "Main", "city": "Oslo", "zip": "0150"}, id="g1", task_queue="q")
        assert newer == "Main in Oslo"
        # An older caller leaves out a field that has no default: the workflow task fails
        # (and is retried, so that a fixed workflow definition can pick the run up).
        handle = await env.client.start_workflow("Greet", {"street": "Main"}, id="g2", task_queue="q")
        failed = await _first_task_failure(handle)
    assert "field 'city' of Address is missing and has no default" in failed["message"]


async def _first_task_failure(handle: Any) -> dict[str, Any]:
    import asyncio

    for _ in range(500):
        history = await handle.fetch_history()
        for event in history.events:
            if event.event_type == "WorkflowTaskFailed":
                return dict(event.attributes["failure"])
        await asyncio.sleep(0.01)
    raise AssertionError("no workflow task failed")


# A custom payload converter: fractions as "text/fraction" payloads, everything else as usual.
class FractionConverter(EncodingPayloadConverter):
    @property
    def encoding(self) -> str:
        return "text/fraction"

    def to_payload(self, value: Any) -> Payload | None:
        return Payload({"encoding": b"text/fraction"}, str(value).encode()) if isinstance(value, Fraction) else None

    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        return Fraction(payload.data.decode())


class DecimalAsText(JSONTypeConverter):
    def to_typed_value(self, hint: Any, value: Any) -> Any:
        return Decimal(value) if hint is Decimal else JSONTypeConverter.Unhandled


class MyConverter(CompositePayloadConverter):
    def __init__(self) -> None:
        super().__init__(
            FractionConverter(),
            *DefaultPayloadConverter.default_encoding_payload_converters[:-1],
            JSONPlainPayloadConverter(custom_type_converters=[DecimalAsText()]),
        )


SEEN: list[str] = []


@activity.defn
async def halve(x: Fraction, price: Decimal) -> Fraction:
    SEEN.append(type(activity.payload_converter()).__name__)
    assert isinstance(price, Decimal)
    return x / 2


@workflow.defn(sandboxed=False)  # SEEN is shared with the test: the sandbox gives each run its own module
class Halves:
    @workflow.run
    async def run(self, x: Fraction) -> Fraction:
        SEEN.append(type(workflow.payload_converter()).__name__)
        return await workflow.execute_activity(halve, args=[x, "1.10"], start_to_close_timeout=timedelta(seconds=5))


async def test_custom_payload_converter_hook_end_to_end() -> None:
    SEEN.clear()
    converter = DataConverter(payload_converter_class=MyConverter)
    env = WorkflowEnvironment(await _client(converter))
    async with env, Worker(env.client, task_queue="q", workflows=[Halves], activities=[halve]):
        handle = await env.client.start_workflow(Halves.run, Fraction(3, 4), id="f", task_queue="q")
        assert await handle.result() == Fraction(3, 8)
        history = await handle.fetch_history()
    assert SEEN[-2:] == ["MyConverter", "MyConverter"]
    started = history.events[0].attributes["input"]["payloads"][0]
    assert Payload.from_json(started) == Payload({"encoding": b"text/fraction"}, b"3/4")


async def _client(converter: DataConverter) -> Any:
    from engine._history.clock import VirtualClock
    from engine.client import Client

    return await Client.connect(":memory:", clock=VirtualClock(), data_converter=converter)


@activity.defn
async def refuse() -> None:
    raise ApplicationError("no stock for Bob", {"sku": "b-1"}, non_retryable=True)


@workflow.defn
class Refused:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(refuse, start_to_close_timeout=timedelta(seconds=5))


async def test_failures_cross_with_their_details() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with env, Worker(env.client, task_queue="q", workflows=[Refused], activities=[refuse]):
        with pytest.raises(WorkflowFailureError) as info:
            await env.client.execute_workflow(Refused.run, id="r", task_queue="q")
    error = info.value.cause
    assert isinstance(error, ActivityError)
    assert isinstance(error.__cause__, ApplicationError) and error.__cause__.details == ({"sku": "b-1"},)


def _refuse_deeply() -> None:
    raise ApplicationError("out of stock", type="OutOfStock", non_retryable=True)


@activity.defn
async def refuse_in_a_helper() -> None:
    _refuse_deeply()


@workflow.defn
class RefusedDeeply:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(refuse_in_a_helper, start_to_close_timeout=timedelta(seconds=5))


@pytest.mark.parametrize("hidden", [False, True])
async def test_a_failure_from_history_keeps_its_stack_trace_when_passed_on(hidden: bool) -> None:
    # As temporalio copies a failure's proto: the workflow's failure holds the activity's
    # own stack trace (where it raised), not a re-rendering of the rebuilt exception.
    converter = DataConverter(failure_converter_class=DefaultFailureConverterWithEncodedAttributes) if hidden else DataConverter.default
    env = await WorkflowEnvironment.start_time_skipping(data_converter=converter)
    async with env, Worker(env.client, task_queue="q", workflows=[RefusedDeeply], activities=[refuse_in_a_helper]):
        with pytest.raises(WorkflowFailureError) as info:
            await env.client.execute_workflow(RefusedDeeply.run, id="r", task_queue="q")
        history = await env.client.get_workflow_handle("r").fetch_history()
    stored = history.events[-1].attributes["failure"]
    assert ("out of stock" not in str(stored) and "_refuse_deeply" not in str(stored)) if hidden else True
    failure = getattr(info.value.cause.__cause__, "failure_json")
    assert "in refuse_in_a_helper" in failure["stackTrace"] and "in _refuse_deeply" in failure["stackTrace"]
    assert failure["message"] == "out of stock"


def test_public_names() -> None:
    import engine.converter as converter

    assert set(converter.__all__) == {
        "AdvancedJSONEncoder", "BinaryNullPayloadConverter", "BinaryPlainPayloadConverter", "CompositePayloadConverter",
        "DataConverter", "DefaultFailureConverter", "DefaultFailureConverterWithEncodedAttributes", "DefaultPayloadConverter",
        "EncodingPayloadConverter", "FailureConverter", "JSONPlainPayloadConverter", "JSONTypeConverter",
        "JSONTypeConverterUnhandled", "Payload", "PayloadCodec", "PayloadConverter", "decode_failure_json", "default",
        "decode_history", "value_to_type",
    }
    import temporalio.converter as theirs

    # Every name we share with temporalio exists there too (same concept, same name).
    shared = set(converter.__all__) - {"Payload", "decode_history", "decode_failure_json"}
    assert shared <= set(theirs.__all__)
