"""Typical wrong answers to the course's exercises, and the phrase each check must answer with.

Keyed by notebook file name; ``check`` is the index of the check cell (in notebook order)
that the answer is checked by. ``source`` replaces the exercise cell (it is run as a new
cell at the end of the notebook, then the check cell again).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    what: str  # the mistake, for the test's message
    check: int
    source: str
    phrase: str  # what the check's answer must contain


GREET = '''%%workflow
@workflow.defn
class GreetEveryone:
    @workflow.run
    async def run(self, people: list[Greeting]) -> list[str]:
        greetings: list[str] = []
{body}
        return greetings
'''

CAREFUL = """%%workflow
@workflow.defn
class CarefulTransfer:
    @workflow.run
    async def run(self, t: TransferDetails) -> list[str]:
        careful_policy = {policy}
        options = dict(start_to_close_timeout=timedelta(minutes=1), retry_policy=careful_policy)
        withdrawn = await workflow.execute_activity(withdraw, t, **options)
        deposited = await workflow.execute_activity(deposit, t, **options)
        return [withdrawn, deposited]
"""

KEYED = """%%activity
@activity.defn
async def withdraw(t: TransferDetails) -> str:
    info = activity.info()
    calls.append(("withdraw", info.workflow_id, info.attempt))
    key = {key}
    bank.change(t.source, -t.amount, idempotency_key=key)
    return f"withdrew {{t.amount}} from {{t.source}}"


@activity.defn
async def deposit(t: TransferDetails) -> str:
    info = activity.info()
    calls.append(("deposit", info.workflow_id, info.attempt))
    key = {key}
    bank.change(t.target, t.amount, idempotency_key=key)
    return f"deposited {{t.amount}} into {{t.target}}"
"""

RAFFLE = """%%workflow
import random


@workflow.defn
class Raffle:
    @workflow.run
    async def run(self, tickets: list[str]) -> dict:
        winner = {winner}
        drawn_at = {drawn_at}
        await workflow.execute_activity(announce, f"{{winner}} at {{drawn_at}}", start_to_close_timeout=timedelta(seconds=5))
        await workflow.sleep(1)
        return {{"winner": winner, "drawn_at": drawn_at}}
"""

QUOTE_PRICES = """%%workflow
{imports}


@workflow.defn
class Quote:
    @workflow.run
    async def run(self, items: list[str]) -> int:
        return sum(pricelist.price(item) for item in items)
"""

IMPORT = """%%activity
imported: list[tuple[str, int, int]] = []


@activity.defn
async def import_rows(count: int) -> int:
    info = activity.info()
    first = {first}
    for row in range(first, count + 1):
        if info.attempt == 1 and row == 12:
            await asyncio.sleep(3600)
        await asyncio.sleep(0.05)
        imported.append((info.workflow_id, info.attempt, row))
        {heartbeat}
    return count


@workflow.defn
class ImportRows:
    @workflow.run
    async def run(self, count: int) -> int:
        return await workflow.execute_activity(
            import_rows, count,
            start_to_close_timeout=timedelta(minutes=10),
            {timeout}
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )
"""

RENDER = """%%workflow
from engine.errors import ActivityError


@workflow.defn
class Render:
    @workflow.run
    async def run(self, frame: int) -> str:
        try:
            return await workflow.execute_activity(render, frame, task_queue="gpu", {gpu})
        except ActivityError:
            pass
        try:
            return await workflow.execute_activity(render, frame, task_queue="timeouts", {cpu})
        except ActivityError:
            return f"gave up on frame {{frame}}"
"""
GPU_WAIT = "start_to_close_timeout=timedelta(seconds=10), schedule_to_start_timeout=timedelta(minutes=2)"
CPU_DEADLINE = "start_to_close_timeout=timedelta(seconds=10), schedule_to_close_timeout=timedelta(minutes=1)"

REFUND = """%%workflow
@workflow.defn
class Refund:
    @workflow.run
    async def run(self, amount: int) -> str:
        if amount > 1000:
            {refuse}
        return f"refunded {{amount}}"
"""

QUOTE = """%%workflow
@workflow.defn
class BestQuote:
    @workflow.run
    async def run(self, suppliers: list[str]) -> int:
        prices = []
        for supplier in {suppliers}:
            prices.append(await {call}(get_price, supplier, start_to_close_timeout=timedelta(seconds=5)))
        return min(prices)
"""

GUESTS = """%%workflow
@workflow.defn
class GuestList:
    def __init__(self) -> None:
        self.guests: list[str] = []
        self.closed = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.closed)
        return self.guests

    @workflow.signal
    def close(self) -> None:
        self.closed = True
{update}"""

FULFIL = """%%workflow
@workflow.defn
class Deliver:
    @workflow.run
    async def run(self, item: str) -> str:
        await workflow.sleep(timedelta(days=2))
        return f"{{item}} delivered"


@workflow.defn
class Fulfil:
    @workflow.run
    async def run(self, items: list[str]) -> list[str]:
{body}
"""
CHILDREN = """        started = [workflow.start_child_workflow(Deliver.run, item, {id}{policy}) for item in items]
        children = await asyncio.gather(*started)
        return list(await asyncio.gather(*children))"""
CHILD_ID = 'id=f"{workflow.info().workflow_id}/{item}", '
ABANDON = "parent_close_policy=workflow.ParentClosePolicy.ABANDON"

HOLD = """%%workflow
@workflow.defn
class HoldSeat:
    def __init__(self) -> None:
        self.paid = False

    @workflow.run
    async def run(self, who: str) -> str:
        seat = await workflow.execute_activity(reserve_seat, who, start_to_close_timeout=timedelta(seconds=5))
{wait}
        return f"{{seat}} held for {{who}}"

    @workflow.signal
    def pay(self) -> None:
        self.paid = True
"""
WAIT = "await workflow.wait_condition(lambda: self.paid, timeout=timedelta(days=1))"
RELEASE = "await workflow.execute_activity(release_seat, seat, start_to_close_timeout=timedelta(seconds=5))"

RUNAWAY = """runaway = %workflow start --type Nap --task-queue endings --input 365
{stop}
bounded = %workflow start --type Nap --task-queue endings --input 30 {limit}
"""

TESTS = """%%writefile .durable/lesson-17/test_billing.py
from pathlib import Path

from engine import Worker, activity
from engine.history import History
from engine.replay import Replayer
from engine.testing import WorkflowEnvironment

from billing import Subscription

HERE = Path(__file__).parent
charged: list[tuple[str, int]] = []


@activity.defn(name="charge")
async def fake_charge(customer: str, amount: int) -> str:
    charged.append((customer, amount))
    return "ok"


async def test_a_year_is_twelve_charges() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    try:
        async with Worker(env.client, task_queue="test", workflows=[Subscription], activities=[fake_charge]):
            total = await env.client.execute_workflow(Subscription.run, args=["ada", 10, 12], id="sub-test", task_queue="test")
    finally:
        await env.shutdown()
    assert total == {total}
    assert charged == [("ada", 10)] * 12
"""

CHECKOUT = """%%workflow
@workflow.defn
class Checkout:
    @workflow.run
    async def run(self, items: list[str]) -> float:
        {first}
        total = await workflow.execute_activity(price, args=[items, None], start_to_close_timeout=timedelta(seconds=5))
        await workflow.sleep(timedelta(seconds=1))
        return total
"""

BASKET = """%%workflow
@workflow.defn
class Basket:
    def __init__(self) -> None:
        self.coupon: str | None = None
        self.checked_out = False

    @workflow.run
    async def run(self, items: list[str]) -> float:
        await workflow.wait_condition(lambda: {waits_for})
        total = await workflow.execute_activity(price, args=[items, self.coupon], start_to_close_timeout=timedelta(seconds=5))
        await workflow.wait_condition(lambda: self.checked_out)
        return total

    @workflow.signal
    def apply_coupon(self, code: str) -> None:
        self.coupon = code

    @workflow.signal
    def checkout(self) -> None:
        self.checked_out = True
"""

TRIP = """%%workflow
@workflow.defn
class InsuredTrip:
    @workflow.run
    async def run(self, trip: Trip) -> list[str]:
        saga = Saga()
        try:
            car = await workflow.execute_activity(reserve_car, trip, **OPTIONS)
            saga.add_compensation(cancel_car, car, start_to_close_timeout=UNDO_TIMEOUT)
            hotel = await workflow.execute_activity(book_hotel, trip, **OPTIONS)
            saga.add_compensation(cancel_hotel, hotel, start_to_close_timeout=UNDO_TIMEOUT)
            insurance = await workflow.execute_activity(buy_insurance, trip, **OPTIONS)
            {insurance_undo}
            payment = await workflow.execute_activity(charge_card, trip, **OPTIONS)
        except ActivityError:
            await saga.compensate()
            {then}
        return [car, hotel, insurance, payment]
"""
UNDO_INSURANCE = "saga.add_compensation(refund_insurance, insurance, start_to_close_timeout=UNDO_TIMEOUT)"

ORDER = """%%workflow
@workflow.defn(name="Order")
class OrderV5:
    @workflow.run
    async def run(self, order: str) -> str:
        {fraud}
        await workflow.execute_activity(charge, order, **STEP)
        {receipt}
        await workflow.sleep(timedelta(days=1))
        return await workflow.execute_activity(ship, order, **STEP)
"""
PATCHED_FRAUD = 'if workflow.patched("fraud-check"):\n            await workflow.execute_activity(check_fraud, order, **STEP)'
ALWAYS_FRAUD = "await workflow.execute_activity(check_fraud, order, **STEP)"
PATCHED_RECEIPT = 'if workflow.patched("receipt"):\n            await workflow.execute_activity(send_receipt, order, **STEP)'
ALWAYS_RECEIPT = "await workflow.execute_activity(send_receipt, order, **STEP)"

POLITE = """%%workflow
@workflow.defn
class PoliteTransfer:
    @workflow.run
    async def run(self, t: TransferDetails) -> list[str]:
        policy = {policy}
        options = dict(start_to_close_timeout=timedelta(minutes=1), retry_policy=policy)
        withdrawn = await workflow.execute_activity(withdraw, t, **options)
        deposited = await workflow.execute_activity(deposit, t, **options)
        return [withdrawn, deposited]
"""

TRIAL = """%%workflow
@workflow.defn
class FreeTrial:
    def __init__(self) -> None:
        self.cancelled = False

    @workflow.run
    async def run(self, customer: str, fee: int) -> str:
        await workflow.execute_activity(send_email, args=[customer, "trial started"], **EMAIL)
        {wait}
        if self.cancelled:
            return "trial cancelled"
        await workflow.execute_activity(charge, args=[customer, fee], **EMAIL)
        return "converted"

    @workflow.signal
    def cancel(self) -> None:
        self.cancelled = True
"""

MEMBERSHIP = """%%workflow
@workflow.defn
class Membership:
    @workflow.run
    async def run(self, customer: str, months: int, billed: int = 0) -> str:
{body}
        return f"{{billed}} months billed"
"""
MONTHS = """        for _ in range({n}):
            await workflow.sleep(timedelta(days=30))
            await workflow.execute_activity(charge, args=[customer, 10], **EMAIL)
            billed += 1"""
NEXT = """        if months > {n}:
            workflow.continue_as_new(args=[customer, months - {n}, {rest}])"""

BIG = """%%workflow
@workflow.defn
class BigExpense:
    def __init__(self) -> None:
        self.decisions: list[Decision] = []

    @workflow.run
    async def run(self, expense: Expense) -> str:
        await workflow.execute_activity(register_expense, expense, **CALL)
        await workflow.wait_condition(lambda: {condition})
        if any(d.outcome == "REJECTED" for d in self.decisions):
            return "REJECTED"
        await workflow.execute_activity(pay, args=[expense.employee, expense.amount], **CALL)
        return "PAID"

    @workflow.signal
    def decide(self, decision: Decision) -> None:
        self.decisions.append(decision)
"""

FEE = """%%workflow
{import_line}


@workflow.defn
class TransferWithFee:
    @workflow.run
    async def run(self, t: TransferDetails) -> list[str]:
        options = dict(start_to_close_timeout=timedelta(minutes=1), retry_policy=RETRY_POLICY)
{body}
"""
FEE_STEPS = (
    "        withdrawn = await workflow.execute_activity(withdraw, t, **options)\n"
    "        fee = await workflow.execute_activity(charge_fee, t, **options)\n"
    "        deposited = await workflow.execute_activity(deposit, t, **options)\n"
)
# A rate set in an ordinary cell, then the %%workflow cell that uses it (as two cells would).
FEE_RATE_ELSEWHERE = "FEE_RATE = 0.01\n_ = get_ipython().run_cell_magic('workflow', '', {cell!r})\n".format(cell=FEE.format(
    import_line="from temporalio import workflow",
    body=FEE_STEPS + "        return [withdrawn, f\"{fee} (rate {FEE_RATE})\", deposited]").split("\n", 1)[1])

APPROVAL = "approval = %workflow start --type Approval --task-queue slow-transfers --input 5000\n"

WRONG_ANSWERS: dict[str, list[Answer]] = {
    "01-hello-workflow.ipynb": [
        Answer(
            "the activity called directly, not through the engine",
            0,
            GREET.format(body="        for person in people:\n            greetings.append(await compose_greeting(person))"),
            "ask the engine with workflow.execute_activity",
        ),
        Answer(
            "only the first person greeted",
            0,
            GREET.format(
                body="        greetings.append(await workflow.execute_activity("
                "compose_greeting, people[0], start_to_close_timeout=timedelta(seconds=5)))"
            ),
            "it returned ['Hello, Ada!']",
        ),
        Answer(
            "workflow code that raises",
            0,
            GREET.format(body="        for person in people:\n            greetings.append(person.nickname)"),
            "its workflow task failed",
        ),
    ],
    "07-crash-lab-1-faults.ipynb": [
        Answer("the policy left as it was", 0, CAREFUL.format(policy="RETRY_POLICY"),
               "list its error type in the policy's non_retryable_error_types"),
        Answer("no retries at all", 0, CAREFUL.format(policy="RetryPolicy(maximum_attempts=1)"),
               "other errors must still be retried"),
        Answer("the wrong error type listed", 0,
               CAREFUL.format(policy='RetryPolicy(non_retryable_error_types=["InjectedFault"])'),
               "the deposit was tried 4 times"),
    ],
    "07-crash-lab-2-crashes.ipynb": [
        Answer("no key", 0, KEYED.format(key="None"), "passes no key yet"),
        Answer("the attempt in the key", 0, KEYED.format(key='f"{info.workflow_run_id}/{info.activity_id}/{info.attempt}"'),
               "changed between two attempts"),
        Answer("one key for both activities", 0, KEYED.format(key="info.workflow_run_id"),
               "withdraw and deposit send the same key"),
        Answer("the same key in every run", 0, KEYED.format(key="str(info.activity_id)"), "The keys of two runs must differ"),
        Answer("the workflow id for the run", 0, KEYED.format(key='f"{info.workflow_id}/{info.activity_id}"'),
               "A workflow id can be used again by a later run"),
    ],
    "07-crash-lab-3-processes.ipynb": [
        Answer("nothing done", 0, "# nothing yet", "no worker polls task queue 'night-transfers'"),
        Answer("a worker on a queue of another case", 0, "%worker start --task-queue Night-Transfers", "case-sensitive"),
        Answer(
            "the run started again",
            0,
            "%workflow terminate --workflow-id orphan\n%worker start --task-queue night-transfers\n"
            "%workflow start --type SlowTransfer --task-queue night-transfers --workflow-id orphan --input '{carol_to_dave}'",
            "it was started again",
        ),
        Answer("signalled from the kernel", 1, APPROVAL + "await approval.signal('approve', 'grace')", "this kernel's client, not from a terminal"),
        Answer("the signal's name capitalised", 1,
               APPROVAL + "!{dlab} workflow signal --workflow-id {approval.workflow_id} --name Approve --input '\"grace\"'",
               "Signal names are case-sensitive"),
        Answer("a string input without its JSON quotes", 1,
               APPROVAL + "!{dlab} workflow signal --workflow-id {approval.workflow_id} --name approve --input grace",
               "no signal reached it yet"),
    ],
    "09-from-notebook-to-temporal.ipynb": [
        Answer("the fee charged before the withdrawal", 0, FEE.format(import_line="from temporalio import workflow", body=(
            "        fee = await workflow.execute_activity(charge_fee, t, **options)\n"
            "        withdrawn = await workflow.execute_activity(withdraw, t, **options)\n"
            "        deposited = await workflow.execute_activity(deposit, t, **options)\n"
            "        return [withdrawn, fee, deposited]")), "between the two"),
        Answer("the engine's import kept", 0, FEE.format(import_line="from engine import workflow",
                                                         body=FEE_STEPS + "        return [withdrawn, fee, deposited]"),
               "from temporalio import workflow"),
        Answer("a rate from an ordinary cell", 0, FEE_RATE_ELSEWHERE, "does not exist there"),
    ],
    "11-sandbox.ipynb": [
        Answer("random and datetime left as they were", 0, RAFFLE.format(winner="random.choice(tickets)", drawn_at="datetime.now().isoformat()"),
               "random.choice() is not allowed in workflow code"),
        Answer("the sandbox silenced", 0, RAFFLE.format(
            winner="random.choice(tickets)",
            drawn_at="datetime.now().isoformat()",
        ).replace("        winner = ", "        with workflow.unsafe.sandbox_unrestricted():\n            winner = ").replace(
            "        drawn_at = ", "            drawn_at = "), "the replay drew other values"),
        Answer("only the draw fixed", 0, RAFFLE.format(winner="workflow.random().choice(tickets)", drawn_at="datetime.now().isoformat()"),
               "datetime.datetime.now() is not allowed"),
        Answer("imported afresh, as given", 1, QUOTE_PRICES.format(imports="import pricelist"),
               "the workflow used a fresh copy of pricelist, not the worker's"),
        Answer("the restrictions lifted around the import", 1,
               QUOTE_PRICES.format(imports="with workflow.unsafe.sandbox_unrestricted():\n    import pricelist"),
               "the workflow used a fresh copy of pricelist, not the worker's"),
        Answer("imported inside the run", 1, QUOTE_PRICES.format(imports="").replace(
            "        return sum(", "        import pricelist\n\n        return sum("), "The sandbox runs your own modules afresh for each run"),
    ],
    "12-data-conversion.ipynb": [
        Answer("nothing configured", 0, "# not yet", "the diagnosis is readable in the database"),
        Answer("a codec made but not given to the kernel", 0,
               "from engine.codecs import EncryptionCodec\ncodec = EncryptionCodec(EncryptionCodec.generate_key())",
               "the diagnosis is readable in the database"),
        Answer("compression, not encryption", 0,
               "from engine.codecs import CompressionCodec\n%config DurableLab.data_converter = DataConverter(payload_codec=CompressionCodec(min_size=0))",
               "Compression is not encryption"),
    ],
    "13-timeouts-heartbeats.ipynb": [
        Answer("heartbeats without a heartbeat timeout", 0,
               IMPORT.format(first="1", heartbeat="activity.heartbeat(row)", timeout=""), "has no heartbeat timeout"),
        Answer("a heartbeat timeout without heartbeats", 0,
               IMPORT.format(first="1", heartbeat="pass", timeout="heartbeat_timeout=timedelta(seconds=1),"),
               "every attempt times out: call activity.heartbeat(row)"),
        Answer("heartbeats that are not read back", 0,
               IMPORT.format(first="1", heartbeat="activity.heartbeat(row)", timeout="heartbeat_timeout=timedelta(seconds=1),"),
               "were imported twice"),
        Answer("a longer start-to-close on the GPU", 1, RENDER.format(gpu="start_to_close_timeout=timedelta(minutes=2)", cpu=CPU_DEADLINE),
               "start-to-close starts counting only when a worker takes the task"),
        Answer("start-to-close as the CPU's deadline", 1, RENDER.format(gpu=GPU_WAIT, cpu="start_to_close_timeout=timedelta(minutes=1)"),
               "its retries never stop"),
        Answer("a few attempts instead of a deadline", 1,
               RENDER.format(gpu=GPU_WAIT, cpu="start_to_close_timeout=timedelta(seconds=10), retry_policy=RetryPolicy(maximum_attempts=3)"),
               "ended by its retry policy, not by a deadline"),
    ],
    "14-failure-types.ipynb": [
        Answer("a ValueError", 0, REFUND.format(refuse='raise ValueError("too large")'), "to the engine that is a bug"),
        Answer("a refusal returned as a value", 0, REFUND.format(refuse='return "refused"'),
               "a refusal that completes the run reads as a success"),
        Answer("an ApplicationError without its type", 0, REFUND.format(refuse='raise ApplicationError("too large")'),
               "expected a non-retryable RefundTooLarge"),
    ],
    "15-children-and-updates.ipynb": [
        Answer("one after another", 0, QUOTE.format(suppliers="suppliers", call="workflow.execute_activity"),
               "scheduled by 3 workflow tasks"),
        Answer("start_activity awaited at once", 0, QUOTE.format(suppliers="suppliers", call="workflow.start_activity"),
               "scheduled by 3 workflow tasks"),
        Answer("a supplier forgotten", 0, QUOTE.format(suppliers="suppliers[:2]", call="workflow.execute_activity"),
               "the suppliers asked were ['acme', 'globex']"),
        Answer("no update yet", 1, GUESTS.format(update=""), "has no update 'invite'"),
        Answer("refused in the handler, after it was recorded", 1, GUESTS.replace("%%workflow\n", "%%workflow\nfrom engine.errors import ApplicationError\n").format(update="""
    @workflow.update
    def invite(self, name: str) -> int:
        if not name or name in self.guests:
            raise ApplicationError("refused")
        self.guests.append(name)
        return len(self.guests)
"""), "a refused request must leave nothing in it"),
        Answer("a ValueError in the handler", 1, GUESTS.format(update="""
    @workflow.update
    def invite(self, name: str) -> int:
        if not name or name in self.guests:
            raise ValueError("refused")
        self.guests.append(name)
        return len(self.guests)
"""), "its workflow task failed while handling the check's requests"),
        Answer("a validator that forgets empty names", 1, GUESTS.format(update="""
    @workflow.update
    def invite(self, name: str) -> int:
        self.guests.append(name)
        return len(self.guests)

    @invite.validator
    def check_invite(self, name: str) -> None:
        if name in self.guests:
            raise ValueError("already invited")
"""), "an empty name was accepted"),
        Answer("no children yet", 2, FULFIL.format(body='        return [f"{item} delivered" for item in items]'),
               "started no child workflow"),
        Answer("the default parent-close policy", 2, FULFIL.format(body=CHILDREN.format(id=CHILD_ID, policy="")),
               "By default a child is terminated with its parent"),
        Answer("children asked to cancel with the parent", 2,
               FULFIL.format(body=CHILDREN.format(id=CHILD_ID, policy="parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL")),
               "REQUEST_CANCEL asks the child to cancel"),
        Answer("the engine's ids for the children", 2, FULFIL.format(body=CHILDREN.format(id="", policy=ABANDON)),
               "Give each child an id you can find again"),
        Answer("one delivery after another", 2, FULFIL.format(body="""        done = []
        for item in items:
            done.append(await workflow.execute_child_workflow(
                Deliver.run, item, id=f"{workflow.info().workflow_id}/{item}", parent_close_policy=workflow.ParentClosePolicy.ABANDON))
        return done"""), "each delivery waited for the one before"),
    ],
    "16-cancellation.ipynb": [
        Answer("no cleanup", 0, HOLD.format(wait=f"        {WAIT}"), "never released its seat"),
        Answer("the cancellation swallowed", 0, HOLD.format(
            wait=f"        try:\n            {WAIT}\n        except asyncio.CancelledError:\n            {RELEASE}\n            return 'released'"),
            "the cancelled hold ended COMPLETED"),
        Answer("a release in finally, also for paid holds", 0, HOLD.format(
            wait=f"        try:\n            {WAIT}\n        finally:\n            {RELEASE}"),
            "a paid hold: it released its seat"),
        Answer("cancelled, not terminated", 1, RUNAWAY.format(stop="await runaway.cancel()", limit="--execution-timeout 2d"),
               "Cancel asks, and the workflow code runs again"),
        Answer("a run timeout, not an execution timeout", 1,
               RUNAWAY.format(stop='await runaway.terminate(reason="stuck")', limit="--run-timeout 2d"),
               "--run-timeout bounds one run"),
        Answer("a limit longer than the nap", 1,
               RUNAWAY.format(stop='await runaway.terminate(reason="stuck")', limit="--execution-timeout 60d"),
               "bounded ended COMPLETED with 'rested'"),
        Answer("not stopped at all", 1, RUNAWAY.format(stop="pass", limit="--execution-timeout 2d"),
               "is still running: it would sleep for 365 days"),
    ],
    "17-testing.ipynb": [
        Answer("no replay test", 0, TESTS.format(total=120), "they pass on a version that sleeps before it charges"),
        Answer("a test that fails on today's code", 0, TESTS.format(total=130), "do not pass on today's billing.py"),
    ],
    "18-reading-a-history.ipynb": [
        Answer("say kept", 0, CHECKOUT.format(first='say("checkout started")'), "each replay said everything again"),
        Answer("print instead of say", 0, CHECKOUT.format(first='print("checkout started")'), "wrote 0 line(s)"),
        Answer("one log line for three steps", 0, CHECKOUT.format(first='workflow.logger.info("checkout started")'),
               "wrote 1 line(s)"),
        Answer("priced at the start", 1, BASKET.format(waits_for="True"), "the workflow priced before it knew the coupon"),
        Answer("waits for a coupon, not for the checkout", 1, BASKET.format(waits_for="self.coupon is not None"),
               "Wait for the checkout, not for the coupon"),
    ],
    "05-trip-booking-saga.ipynb": [
        Answer("the insurance not undone", 0, TRIP.format(insurance_undo="pass", then="raise"),
               "the compensations that ran were ['cancel_hotel', 'cancel_car']"),
        Answer("compensated, then completed", 0, TRIP.format(insurance_undo=UNDO_INSURANCE, then='return ["cancelled"]'),
               "the run ended COMPLETED"),
    ],
    "06-versioning.ipynb": [
        Answer("no receipt yet", 0, ORDER.format(fraud=PATCHED_FRAUD, receipt="pass"), "no send_receipt"),
        Answer("a receipt without a patch", 0, ORDER.format(fraud=PATCHED_FRAUD, receipt=ALWAYS_RECEIPT),
               "on replay the code produced ScheduleActivityTask(activity_type='send_receipt'"),
        Answer("the fraud-check patch dropped", 0, ORDER.format(fraud=ALWAYS_FRAUD, receipt=PATCHED_RECEIPT),
               "on replay the code produced ScheduleActivityTask(activity_type='check_fraud'"),
    ],
    "02-money-transfer.ipynb": [
        Answer("the template's policy kept", 0, POLITE.format(policy="RETRY_POLICY"), "initial_interval is 1, the bank asks 0.1"),
        Answer("too few attempts", 0, POLITE.format(policy="RetryPolicy(initial_interval=timedelta(seconds=0.1), maximum_attempts=2)"),
               "the run ended FAILED"),
    ],
    "03-subscription.ipynb": [
        Answer("a sleep that cannot be cut short", 0, TRIAL.format(wait="await workflow.sleep(timedelta(days=14))"),
               "the customer waited for the timer"),
        Answer("a month instead of 14 days", 0, TRIAL.format(
            wait="try:\n            await workflow.wait_condition(lambda: self.cancelled, timeout=timedelta(days=30))\n"
            "        except asyncio.TimeoutError:\n            pass"), "timers of 30 days"),
        Answer("one run for every month", 1, MEMBERSHIP.format(body=MONTHS.format(n="months") + "\n" + NEXT.format(n="months", rest="billed")),
               "7 months made 1 run(s)"),
        Answer("a run per month", 1, MEMBERSHIP.format(body=MONTHS.format(n="min(months, 1)") + "\n" + NEXT.format(n="1", rest="billed")),
               "Continue as new after 3 months, not after each one"),
        Answer("the count not carried", 1, MEMBERSHIP.format(body=MONTHS.format(n="min(months, 3)") + "\n" + NEXT.format(n="3", rest="0")),
               "carry the months billed in the new run's input"),
    ],
    "04-expense-report.ipynb": [
        Answer("pays after the first decision", 0, BIG.format(condition="len(self.decisions) > 0"),
               "pay was scheduled after one approval"),
        Answer("counts approvals, not approvers", 0, BIG.format(
            condition='any(d.outcome == "REJECTED" for d in self.decisions) or '
            'len([d for d in self.decisions if d.outcome == "APPROVED"]) >= 2'),
            "pay was scheduled after grace approved twice"),
    ],
    "19-architecture.ipynb": [
        Answer("nothing read", 0, "def pending_tasks(db_path, workflow_id):\n    return []",
               "pending_tasks returned [], but matching holds [('workflow', 'arch-nobody')]"),
        Answer("every run's tasks", 0, (
            "def pending_tasks(db_path, workflow_id):\n    with sqlite3.connect(db_path) as db:\n"
            "        return sorted(db.execute('SELECT kind, task_queue FROM tasks').fetchall())"),
            "Filter the tasks table by the run's run_id"),
    ],
    "08-replay-debugging.ipynb": [
        Answer("the right name, the debugger left where it was", 0, 'decided_by = "out_of_stock"',
               "not where the workflow decides"),
        Answer("the wrong variable", 0, 'storm.goto(line=storm.line_of("break"))\ndecided_by = "attempt"',
               "it is not what made the workflow decide to compensate"),
        Answer("a name that is not a local", 0, 'storm.goto(line=storm.line_of("break"))\ndecided_by = "warehouse"',
               "'warehouse' is not a local here"),
        Answer("no delays collected", 1, "delays = []", "your list has 0 delays"),
        Answer("delays made up", 1, "delays = [1, 2]", "your list has 2 delays"),
        Answer("a backoff imagined", 1, "delays = [1, 2, 4, 8]", "1 of 4 delays are right; delay 2 is not 2 s"),
    ],
    # The load lab's checks read the learner's own measured reports: these answers are wrong
    # whatever this machine measured (no step offers 1000 runs/s; the names are fixed).
    "10-load-testing.ipynb": [
        Answer("no answer", 0, "answer = None", "set answer to a number of runs per second"),
        Answer("a rate no step offered", 0, "answer = 1000", "It is lower than 1000 runs/s"),
        Answer("no answer", 1, "answer = None", "set answer to the name of a report"),
        Answer("a report that is not there", 1, 'answer = "three"', "answer with one of: 'one', 'two'"),
        Answer("no answer", 2, "answer = None", "set answer to a number of runs per second"),
        Answer("a rate no step offered", 2, "answer = 1000", "lower than 1000"),
    ],
}
