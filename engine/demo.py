"""``make demo``: watch the engine move money through a failing bank and a crashed worker.

Run it with ``python -m engine.demo``. The story, in five steps:

1. open an engine database in a temporary folder and start ``worker-1`` in its own process;
2. transfer 100 from alice to bob while bob's bank is down: the engine retries the deposit
   after 1 s, then 2 s, and the workflow code never notices;
3. transfer 50 from alice to carol and kill ``worker-1`` (like ``kill -9``) after the money
   has left alice but before it reached carol;
4. start ``worker-2``, which knows nothing of the transfer: it replays the recorded history,
   skips the withdrawal that already happened and finishes the deposit;
5. print the transfer's history, the way ``temporal workflow show`` does, and export it
   as Temporal JSON.

Every real call of an activity is appended to a ledger file, so the end of the demo can count
them: each withdrawal ran exactly once, however many workers were involved.

Importing this module has no side effects; ``main()`` runs the demo.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Sequence

from engine import activity, workflow
from engine.client import Client, WorkflowHandle
from engine.common import RetryPolicy
from engine.history import History, HistoryEvent, decode_payloads
from engine.worker import Worker

__all__ = ["main", "MoneyTransfer", "Transfer", "withdraw", "deposit", "TASK_QUEUE", "RETRY_POLICY"]

TASK_QUEUE = "money-transfer"
WIDTH = 96  # every printed line stays below 100 characters

# As in Temporal's money-transfer template.
RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=500,
)
START_TO_CLOSE = timedelta(minutes=1)

# How many deposit attempts fail because the target's bank is down.
BANK_OUTAGES = {"bob": 2, "carol": 1}
OPENING_BALANCES = {"alice": 500, "bob": 0, "carol": 0}


# --------------------------------------------------------------------------- the application


@dataclass
class Transfer:
    source: str
    target: str
    amount: int


@dataclass
class _Setup:
    """Where this process writes its ledger, who it is and when the demo started."""

    ledger: Path | None = None
    worker: str = "?"
    t0: float = 0.0
    style: "_Style | None" = None
    # While exploring crash points: activities only count their effects here, quietly.
    exploring: list[tuple[str, int]] | None = None


_setup = _Setup()


def _record(name: str, transfer: Transfer, outcome: str) -> None:
    """Append one real execution of an activity to the ledger (shared by all processes)."""
    if _setup.exploring is not None:
        if outcome == "ok":
            account = transfer.source if name == "withdraw" else transfer.target
            _setup.exploring.append((account, -transfer.amount if name == "withdraw" else transfer.amount))
        return
    info = activity.info()
    line = {
        "activity": name,
        "workflow_id": info.workflow_id,
        "attempt": info.attempt,
        "worker": _setup.worker,
        "outcome": outcome,
        "transfer": {"source": transfer.source, "target": transfer.target, "amount": transfer.amount},
    }
    if _setup.ledger is not None:
        with open(_setup.ledger, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
    style = _setup.style or _Style(False)
    mark = style.green("ok") if outcome == "ok" else style.red("FAILED")
    what = f"{name:<8} attempt {info.attempt}  {info.workflow_id}"
    tail = f"{mark}  {outcome}" if outcome != "ok" else mark
    print(f"    {style.dim(_clock())}  [{_setup.worker}]  {what}  {tail}", flush=True)


@activity.defn
async def withdraw(t: Transfer) -> str:
    """Take the money from the source account (a side effect that must happen once)."""
    _record("withdraw", t, "ok")
    return f"withdrew {t.amount} from {t.source}"


@activity.defn
async def deposit(t: Transfer) -> str:
    """Put the money in the target account; fails while the target's bank is down."""
    if activity.info().attempt <= BANK_OUTAGES.get(t.target, 0):
        _record("deposit", t, f"bank of {t.target} is down")
        raise ConnectionError(f"bank of {t.target} is down")
    _record("deposit", t, "ok")
    return f"deposited {t.amount} into {t.target}"


@workflow.defn
class MoneyTransfer:
    @workflow.run
    async def run(self, t: Transfer) -> list[str]:
        options: dict[str, Any] = dict(start_to_close_timeout=START_TO_CLOSE, retry_policy=RETRY_POLICY)
        withdrawn = await workflow.execute_activity(withdraw, t, **options)
        deposited = await workflow.execute_activity(deposit, t, **options)
        return [withdrawn, deposited]


# --------------------------------------------------------------------------- printing


class _Style:
    """ANSI colours, only when stdout is a terminal (and NO_COLOR is unset)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stdout(cls) -> "_Style":
        tty = sys.stdout.isatty()
        return cls(tty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb")

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def green(self, text: str) -> str:
        return self._wrap("32", text)

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def yellow(self, text: str) -> str:
        return self._wrap("33", text)

    def cyan(self, text: str) -> str:
        return self._wrap("36", text)


def _clock() -> str:
    return f"t+{time.time() - _setup.t0:4.1f}s"


class _Narrator:
    def __init__(self, style: _Style) -> None:
        self.s = style
        self.interactive = sys.stdout.isatty()

    def step(self, number: int, title: str) -> None:
        print()
        print(self.s.bold(self.s.cyan(f"Step {number}. {title}")))

    def say(self, text: str) -> None:
        for paragraph in text.strip().split("\n\n"):
            text = " ".join(paragraph.split())
            print(textwrap.fill(text, WIDTH, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False))

    def code(self, text: str) -> None:
        for line in textwrap.dedent(text).strip("\n").splitlines():
            print("      " + self.s.yellow(line))

    def event(self, text: str) -> None:
        print(f"    {self.s.dim(_clock())}  {text}", flush=True)

    async def pause(self, seconds: float = 0.8) -> None:
        """Give a human time to read; no waiting when the output goes to a file or pipe."""
        if self.interactive:
            await asyncio.sleep(seconds)


# --------------------------------------------------------------------------- helpers


def _activity_names(history: History) -> dict[int, str]:
    """ActivityTaskScheduled event id -> activity type."""
    return {
        e.event_id: e.attributes.get("activityType", {}).get("name", "?")
        for e in history.events
        if e.event_type == "ActivityTaskScheduled"
    }


def _who(identity: Any) -> str:
    # The engine records "<worker identity>#<lease owner>"; the identity is what we chose.
    return str(identity or "?").split("#", 1)[0]


def _value(obj: Any) -> str:
    values = decode_payloads(obj)
    shown = values[0] if len(values) == 1 else values
    return json.dumps(shown, separators=(", ", ": "))


def _details(event: HistoryEvent, names: dict[int, str]) -> str:
    a = event.attributes
    kind = event.event_type
    scheduled = names.get(int(a.get("scheduledEventId") or 0), "?")
    if kind == "WorkflowExecutionStarted":
        return f"{a['workflowType']['name']}({_value(a.get('input'))})"
    if kind == "WorkflowTaskScheduled":
        return f"queue {a.get('taskQueue', {}).get('name', '?')}"
    if kind in ("WorkflowTaskStarted", "WorkflowTaskCompleted"):
        return f"by {_who(a.get('identity'))}"
    if kind == "WorkflowTaskFailed":
        return f"{(a.get('failure') or {}).get('message', '')}"
    if kind == "ActivityTaskScheduled":
        return f"{a['activityType']['name']}, start-to-close {a.get('startToCloseTimeout')}"
    if kind == "ActivityTaskStarted":
        text = f"{scheduled} attempt {a.get('attempt')} by {_who(a.get('identity'))}"
        if a.get("lastFailure"):
            text += f" (last failure: {a['lastFailure'].get('message')})"
        return text
    if kind == "ActivityTaskCompleted":
        return f"{scheduled} -> {_value(a.get('result'))}"
    if kind in ("ActivityTaskFailed", "ActivityTaskTimedOut"):
        return f"{scheduled}: {(a.get('failure') or {}).get('message', '')}"
    if kind == "WorkflowExecutionCompleted":
        return f"result {_value(a.get('result'))}"
    if kind == "WorkflowExecutionFailed":
        return f"{(a.get('failure') or {}).get('message', '')}"
    return ""


def print_history(history: History, style: _Style) -> None:
    """A table like ``temporal workflow show``: ID, time since the first event, type, details."""
    names = _activity_names(history)
    start = history.events[0].event_time
    indent = 2 + 3 + 2 + 8 + 2 + 26 + 2
    print(style.bold(f"  {'ID':>3}  {'TIME':>8}  {'TYPE':<26}  DETAILS"))
    for e in history.events:
        offset = (e.event_time - start).total_seconds() if e.event_time and start else 0.0
        lines = textwrap.wrap(_details(e, names), WIDTH - indent) or [""]
        kind = e.event_type
        if kind.startswith("Activity"):
            kind_shown = style.cyan(f"{kind:<26}")
        elif kind.startswith("WorkflowExecution"):
            kind_shown = style.bold(f"{kind:<26}")
        else:
            kind_shown = style.dim(f"{kind:<26}")
        print(f"  {e.event_id:>3}  {f'+{offset:.3f}s':>8}  {kind_shown}  {lines[0]}")
        for more in lines[1:]:
            print(" " * indent + more)


def _read_ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


async def _result(handle: WorkflowHandle, timeout: float = 30.0) -> Any:
    try:
        return await asyncio.wait_for(handle.result(), timeout)
    except asyncio.TimeoutError:
        raise RuntimeError(f"{handle.id} did not finish within {timeout:.0f} s") from None


async def _wait_for_failed_deposit(handle: WorkflowHandle, timeout: float = 10.0) -> None:
    """Return once the deposit of ``handle`` has a failed attempt recorded in the database."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = _activity_names(await handle.fetch_history())
        for attempt in await handle.activity_attempts():
            if names.get(attempt.scheduled_event_id) == "deposit" and attempt.outcome == "failed":
                return
        await asyncio.sleep(0.02)
    raise RuntimeError(f"{handle.id}: no failed deposit attempt after {timeout:.0f} s; is worker-1 running?")


# --------------------------------------------------------------------------- worker-1's process


async def _serve(db: str, ready: Path) -> None:
    client = await Client.connect(db)
    worker = Worker(
        client, task_queue=TASK_QUEUE, workflows=[MoneyTransfer], activities=[withdraw, deposit], identity="worker-1"
    )
    async with worker:
        ready.touch()
        await asyncio.Event().wait()  # serve until the demo kills this process


def _worker_process(argv: Sequence[str]) -> None:
    """Entry point of the child process that runs worker-1 (``--worker-1 DB LEDGER T0``)."""
    db, ledger, t0 = argv
    _setup.ledger, _setup.worker, _setup.t0, _setup.style = Path(ledger), "worker-1", float(t0), _Style.for_stdout()
    try:
        asyncio.run(_serve(db, Path(db).with_name("worker-1.ready")))
    except KeyboardInterrupt:
        pass


# --------------------------------------------------------------------------- the demo


async def _demo(folder: Path, say: _Narrator) -> None:
    s = say.s
    db = folder / "engine.db"
    ledger = folder / "bank-ledger.jsonl"
    ready = folder / "worker-1.ready"
    _setup.ledger, _setup.worker, _setup.style = ledger, "worker-2", s

    print(s.bold("durable-lab demo: a money transfer that survives a failing bank and a dead worker"))
    say.say(
        """A workflow (MoneyTransfer) calls two activities: withdraw from the source account, then
        deposit into the target. Activities are where side effects happen; the workflow only
        decides what to do next. The engine records every step in a history, so any worker can
        pick up a run where another one stopped."""
    )

    # 1 ------------------------------------------------------------------------------------
    say.step(1, "Open the engine's database and start worker-1")
    client = await Client.connect(str(db))
    say.code('client = await Client.connect(".../engine.db")')
    say.say("All engine state (runs, histories, task queues, timers) lives in this one SQLite file:")
    print(f"      {db}")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine.demo", "--worker-1", str(db), str(ledger), repr(_setup.t0)
    )
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            if proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker-1 did not start (exit code {proc.returncode}); see its errors above")
            await asyncio.sleep(0.05)
        say.say(
            f"""worker-1 runs in its own process (pid {proc.pid}), as a real deployment would. It
            polls task queue '{TASK_QUEUE}' for workflow tasks (run MoneyTransfer code) and
            activity tasks (run withdraw / deposit):"""
        )
        say.code(
            f"""
            Worker(client, task_queue="{TASK_QUEUE}", identity="worker-1",
                   workflows=[MoneyTransfer], activities=[withdraw, deposit])"""
        )
        await say.pause()
        await _transfer_with_retries(client, say)
        await say.pause()
        handle = await _crash(client, say, proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    await say.pause()
    await _recover(client, say, handle, ledger)
    await say.pause()
    await _show_history(handle, say, folder)
    await client.close()
    await say.pause()
    await _explore(say)
    ready.unlink(missing_ok=True)

    print()
    print(s.bold("Files kept for you to inspect") + f" in {folder}:")
    print("      engine.db (the engine's database), bank-ledger.jsonl, transfer-2.json")
    print(f"  Remove them with: rm -r {folder}")
    say.say("Next: `make test`, then the notebooks in notebooks/ to write workflows of your own.")


async def _explore(say: _Narrator) -> None:
    from engine import faults

    say.step(6, "Crash the transfer at every point, and check each recovery")
    say.say(
        """Step 3 killed worker-1 at one moment. engine.faults.explore kills a worker at every
        moment that matters: just before and just after each state change it submits (a workflow
        task's decisions, an activity's result) is committed. Each time a new worker takes over,
        and the run is checked: same result, no activity re-run once its completion was recorded,
        and here also the money: alice debited once, dave credited once."""
    )
    say.code(
        """
        report = await faults.explore(MoneyTransfer.run, Transfer("alice", "dave", 10),
                                      activities=[withdraw, deposit], check=money_moved_once)"""
    )
    effects: list[tuple[str, int]] = []

    def reset() -> None:
        effects.clear()

    def money_moved_once(outcome: Any) -> str | None:
        debits = [amount for account, amount in effects if account == "alice"]
        credits = [amount for account, amount in effects if account == "dave"]
        if debits != [-10]:
            return f"alice debited {len(debits)} times"
        return None if credits == [10] else f"dave credited {len(credits)} times"

    _setup.exploring = effects
    try:
        report = await faults.explore(
            MoneyTransfer.run, Transfer("alice", "dave", 10), activities=[withdraw, deposit], setup=reset, check=money_moved_once
        )
    finally:
        _setup.exploring = None
    for line in report.table().splitlines():
        print("    " + (say.s.red(line) if "VIOLATION" in line else line))
    say.say(
        """Every crash point recovered to the same result. Two of them still moved money twice,
        and the engine cannot prevent it: a worker that dies after the bank moved the money but
        before the engine recorded that the activity completed. The engine must run the activity
        again (it cannot know the bank already did the work), so a non-idempotent withdraw or
        deposit happens twice. Temporal has the same rule: activities run at least once. The fix
        is in the activity: give the bank an idempotency key (for example the workflow id and
        activity id) so it recognises a retry. Tutorial 07 (the crash lab) walks through it."""
    )


async def _transfer_with_retries(client: Client, say: _Narrator) -> None:
    s = say.s
    say.step(2, "Transfer 100 from alice to bob while bob's bank is down")
    say.say(
        """The client starts a run and gets a handle back at once; worker-1 does the work. The
        deposit fails twice (bob's bank is down), and the retry policy of Temporal's
        money-transfer template applies:"""
    )
    say.code(
        """
        RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(minutes=1), maximum_attempts=500)"""
    )
    say.code(
        'handle = await client.start_workflow(MoneyTransfer.run, Transfer("alice", "bob", 100),\n'
        f'                                     id="transfer-1", task_queue="{TASK_QUEUE}")'
    )
    handle = await client.start_workflow(
        MoneyTransfer.run, Transfer("alice", "bob", 100), id="transfer-1", task_queue=TASK_QUEUE
    )
    say.event("transfer-1 started; activity calls as they happen in the workers:")
    result = await _result(handle)
    say.event(f"handle.result() -> {s.green(json.dumps(result))}")

    names = _activity_names(await handle.fetch_history())
    tries = [a for a in await handle.activity_attempts() if names.get(a.scheduled_event_id) == "deposit"]
    gaps = [
        (later.started_at - earlier.ended_at).total_seconds()
        for earlier, later in zip(tries, tries[1:])
        if later.started_at is not None
    ]
    measured = " and ".join(f"{g:.2f} s" for g in gaps)
    say.say(
        f"""The engine waited {measured} before the 2nd and 3rd deposit attempts: the
        initial_interval, then twice that (backoff_coefficient 2). No worker slept to do
        that: the next attempt was a row in the database with a due time. The workflow code
        never saw the failures; its `await workflow.execute_activity(deposit, ...)` simply
        returned once the bank was back."""
    )


async def _crash(client: Client, say: _Narrator, proc: asyncio.subprocess.Process) -> WorkflowHandle:
    s = say.s
    say.step(3, "Transfer 50 from alice to carol, and kill worker-1 halfway")
    say.say(
        """carol's bank is down for one attempt. As soon as the first deposit attempt has failed
        (withdraw is done: the money has left alice but has not reached carol), the demo kills
        worker-1's process without warning, as a power cut or `kill -9` would."""
    )
    handle = await client.start_workflow(
        MoneyTransfer.run, Transfer("alice", "carol", 50), id="transfer-2", task_queue=TASK_QUEUE
    )
    say.event("transfer-2 started")
    await _wait_for_failed_deposit(handle)
    proc.kill()
    await proc.wait()
    say.event(s.red(f"worker-1 (pid {proc.pid}) killed: exit code {proc.returncode}, no clean-up ran"))
    desc = await handle.describe()
    history = await handle.fetch_history()
    done = [
        e.attributes.get("result") for e in history.events if e.event_type == "ActivityTaskCompleted"
    ]
    say.say(
        f"""Gone with the process: the MoneyTransfer object that was waiting on deposit, and
        everything else worker-1 held in memory. Still in the database: the run
        ({desc.status.name}, {desc.history_length} events, {len(done)} activity completed:
        withdraw) and the deposit task with its next attempt due 1 s after the failure."""
    )
    say.say(
        """Nobody polls the task queue now. The retry comes due and waits; a run can wait like
        this for seconds or for days."""
    )
    await asyncio.sleep(2.0)
    say.event(f"still {(await handle.describe()).status.name}, no worker on '{TASK_QUEUE}'")
    return handle


async def _recover(client: Client, say: _Narrator, handle: WorkflowHandle, ledger: Path) -> None:
    s = say.s
    say.step(4, "Start worker-2: it replays the history and finishes the transfer")
    say.say(
        """worker-2 is a brand-new Worker: it has never seen transfer-2. To continue the run it
        re-executes MoneyTransfer.run from the top against the recorded history (replay). When
        the code reaches `execute_activity(withdraw, ...)` the history already holds its
        result, so the engine hands that result back instead of calling withdraw again."""
    )
    say.code(
        f"""
        async with Worker(client, task_queue="{TASK_QUEUE}", identity="worker-2",
                          workflows=[MoneyTransfer], activities=[withdraw, deposit]):
            await handle.result()"""
    )
    worker = Worker(
        client, task_queue=TASK_QUEUE, workflows=[MoneyTransfer], activities=[withdraw, deposit], identity="worker-2"
    )
    async with worker:
        say.event("worker-2 started")
        result = await _result(handle)
    say.event(f"handle.result() -> {s.green(json.dumps(result))}")
    replays, attempts = worker.stats["replays"], worker.stats["activities"]
    say.say(
        f"""worker-2 rebuilt {replays} run{'s' if replays != 1 else ''} by replaying its history
        (transfer-2) and ran {attempts} activity attempt{'s' if attempts != 1 else ''} itself
        (the deposit)."""
    )

    entries = _read_ledger(ledger)
    calls = Counter((e["workflow_id"], e["activity"]) for e in entries)
    failed = Counter((e["workflow_id"], e["activity"]) for e in entries if e["outcome"] != "ok")
    print()
    print("  " + s.bold("Real executions, counted from the ledger every activity call appends to:"))
    for wid in ("transfer-1", "transfer-2"):
        workers = sorted({e["worker"] for e in entries if e["workflow_id"] == wid})
        parts = []
        for name in ("withdraw", "deposit"):
            n, bad = calls[(wid, name)], failed[(wid, name)]
            text = f"{name} ran {n}x"
            if bad:
                text += f" ({bad} failed)"
            parts.append(text)
        print(f"    {wid}:  {',  '.join(parts)}   by {', '.join(workers)}")
    balances = dict(OPENING_BALANCES)
    for e in entries:
        if e["outcome"] != "ok":
            continue
        t = e["transfer"]
        if e["activity"] == "withdraw":
            balances[t["source"]] -= t["amount"]
        else:
            balances[t["target"]] += t["amount"]
    moves = ",  ".join(f"{who} {OPENING_BALANCES[who]} -> {balances[who]}" for who in balances)
    print(f"    balances:  {moves}")
    once = all(calls[(wid, "withdraw")] == 1 for wid in ("transfer-1", "transfer-2"))
    verdict = s.green("withdraw ran exactly once per transfer") if once else s.red("withdraw ran more than once!")
    say.say(f"{verdict}, despite the retries and the crash; no money was created or lost.")


async def _show_history(handle: WorkflowHandle, say: _Narrator, folder: Path) -> None:
    s = say.s
    say.step(5, "The history of transfer-2, as `temporal workflow show` would print it")
    history = await handle.fetch_history()
    desc = await handle.describe()
    say.code("history = await handle.fetch_history()")
    say.say(
        f"""{len(history)} events; run id {desc.run_id}, started
        {history.events[0].event_time:%Y-%m-%d %H:%M:%S} UTC."""
    )
    print()
    print_history(history, s)
    print()
    takeover = next(
        e.event_id
        for e in history.events
        if e.event_type == "WorkflowTaskStarted" and _who(e.attributes.get("identity")) == "worker-2"
    )
    say.say(
        f"""Read it top to bottom: worker-1 ran withdraw and scheduled deposit, then died. worker-2
        ran the deposit's next attempt; at its first workflow task (event {takeover}) it replayed
        events 1-{takeover - 1} through MoneyTransfer.run, and the code, now past both
        activities, completed the run. As in Temporal, a retried activity shows up once, with its
        final attempt number and last failure; handle.activity_attempts() lists every attempt."""
    )
    export = folder / "transfer-2.json"
    export.write_text(history.to_json(), encoding="utf-8")
    say.say(
        """The same history in Temporal's JSON format (what `temporal workflow show --output json`
        and the Web UI download produce), written with history.to_json() to:"""
    )
    print(f"      {export}")
    say.say("Load it back with engine.history.load_history(path).")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--worker-1"]:
        _worker_process(args[1:])
        return 0
    if args:
        print("usage: python -m engine.demo", file=sys.stderr)
        return 2
    style = _Style.for_stdout()
    _setup.t0 = time.time()
    folder = Path(tempfile.mkdtemp(prefix="durable-lab-demo-"))
    try:
        asyncio.run(_demo(folder, _Narrator(style)))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
