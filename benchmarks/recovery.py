"""Recovery after a SIGKILL: 1,000 runs in flight, the worker process killed, a new one started.

    .venv/bin/python benchmarks/recovery.py [--workflows 1000] [--rounds 1]

The parent starts ``--workflows`` runs of ``recovery_workload.ThreeSteps`` (three activities
that return at once, the crash test's timeouts: workflow task 1 s, start-to-close 2 s, retry
after 0.1 s) on a file database, then starts a worker process (``Client`` + ``Worker``, this
script with ``--serve``) in which the third activity hangs. Once every run has done its first
two activities (and a moment more), it SIGKILLs that worker: every run is then in flight, as
many mid-activity as the worker had slots (``--slots``, leased to the dead worker), the others
between tasks (their third activity queued, or a workflow task leased or queued). Then a new
worker process starts (its third activity works), and the parent waits until every run is
closed. The clock starts when the new process begins connecting its ``Client`` (its Python
start-up, printed apart, is not the engine's), and it is read from the runs' own histories:

- ``reclaimed``: the last timeout recorded for a lease of the dead worker (a
  ``WorkflowTaskTimedOut`` event, an activity attempt ``timed out``): when the engine had
  noticed the owner was gone and taken its leases back;
- ``rebuilt``: the last run whose first workflow task in the new worker completed (its
  instance rebuilt from history);
- ``finished``: the last ``WorkflowExecutionCompleted``.

Then the check that no completed activity ran twice: every execution is counted in a side file
(``recovery_workload``); per scheduled activity, no attempt number ran twice, and the attempt
recorded in history is the last one that ran (an attempt cut short by the kill is retried:
that is at-least-once and allowed, and counted as a re-execution).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The engine comes from PYTHONPATH when it is set (to measure another checkout with this
# script), else from this checkout; the workload from this folder (the script's own).
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(ROOT))

from _machine import load  # noqa: E402
from recovery_workload import ACTIVITIES, TASK_TIMEOUT, ThreeSteps  # noqa: E402
from engine import Client, Worker  # noqa: E402

QUEUE = "recovery"


# ---------------------------------------------------------------------------- the worker process
class _GcClock:
    """CPU spent in the cycle collector, per generation (``gc.callbacks``): the new worker
    builds a fresh sandboxed module and instance per rebuilt run, whose cycles only the
    collector frees."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.cpu = [0.0, 0.0, 0.0]
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.thread_time()
        else:
            self.collections[info["generation"]] += 1
            self.cpu[info["generation"]] += time.thread_time() - self._began


async def _serve(db: str, slots: int) -> None:
    began = time.time()
    cpu0 = time.process_time()
    gc_clock = _GcClock()
    gc.callbacks.append(gc_clock)
    client = await Client.connect(db)
    worker = Worker(
        client, task_queue=QUEUE, workflows=[ThreeSteps], activities=ACTIVITIES,
        max_concurrent_activities=slots, max_concurrent_workflow_tasks=slots,
    )
    profile_to = os.environ.get("RECOVERY_PROFILE")
    profiler: Any = None

    def stop() -> None:
        # Asked by the parent once every run closed: this process's CPU since its Client's start.
        print(f"cpu {time.process_time() - cpu0!r} {worker.stats.get('replays', 0)}", flush=True)
        print("gc " + " ".join(map(repr, [*gc_clock.collections, *gc_clock.cpu])), flush=True)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile_to)
        os._exit(0)

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop)
    if profile_to:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    print(f"ready {began!r} {os.getpid()}", flush=True)
    await worker.run()


# ---------------------------------------------------------------------------- the parent
def _spawn(db: str, log: Path, slots: int, hang: bool, profile: str = "") -> tuple[subprocess.Popen[bytes], float, float]:
    """A worker process; returns it, when it was spawned and when its Client began connecting."""
    spawned = time.time()
    env = {**os.environ, "RECOVERY_LOG": str(log), "RECOVERY_HANG": "1" if hang else "0",
           "RECOVERY_PROFILE": "" if hang or not profile else profile,
           "PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT))}
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve", db, "--slots", str(slots)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().split()
    if not line or line[0] != "ready":
        proc.kill()
        raise SystemExit(f"the worker process did not start: {line!r}")
    return proc, spawned, float(line[1])


def _lines(log: Path) -> int:
    try:
        with open(log, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def _open_runs(db: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM executions WHERE status = 'Running'").fetchone()[0])
    finally:
        conn.close()


def _task_states(db: str) -> str:
    """What the dead worker left: tasks by kind, leased or queued (for the record)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT kind, lease_owner IS NOT NULL, count(*) FROM tasks GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
    except sqlite3.Error as e:
        return f"(not read: {e})"
    finally:
        conn.close()
    return ", ".join(f"{kind} {'leased' if leased else 'queued'} {n}" for kind, leased, n in rows) or "none"


async def _start_runs(db: str, n: int) -> None:
    client = await Client.connect(db)
    try:
        for i in range(0, n, 200):
            await asyncio.gather(
                *(client.start_workflow(ThreeSteps.run, k, id=f"recovery-{k}", task_queue=QUEUE, task_timeout=TASK_TIMEOUT)
                  for k in range(i, min(n, i + 200)))
            )
    finally:
        await client.close()


async def _histories(db: str, n: int) -> list[Any]:
    client = await Client.connect(db)
    try:
        out = []
        for k in range(n):
            out.append(list((await client.get_workflow_handle(f"recovery-{k}").fetch_history()).events))
        return out
    finally:
        await client.close()


def _check(histories: list[Any], log: Path, new_pid: int, t0: float, killed_at: float) -> dict[str, Any]:
    ran: dict[tuple[str, str], list[int]] = defaultdict(list)
    for raw in log.read_text().splitlines():
        wf, act, attempt, _pid = raw.split(" ")
        ran[(wf, act)].append(int(attempt))
    figures: Counter[str] = Counter()
    errors: list[str] = []
    reclaimed = rebuilt = finished = t0
    for k, events in enumerate(histories):
        wf = f"recovery-{k}"
        by_id = {e.event_id: e for e in events}
        closing = events[-1]
        if closing.event_type != "WorkflowExecutionCompleted":
            errors.append(f"{wf}: ends with {closing.event_type}")
            continue
        finished = max(finished, closing.event_time.timestamp())
        first_new = next(
            (e for e in events if e.event_type == "WorkflowTaskCompleted"
             and str(e.attributes.get("identity", "")).startswith(f"{new_pid}@")), None,
        )
        if first_new is not None:
            rebuilt = max(rebuilt, first_new.event_time.timestamp())
        for e in events:
            if e.event_type == "WorkflowTaskTimedOut" and e.event_time.timestamp() >= killed_at:
                reclaimed = max(reclaimed, e.event_time.timestamp())
                figures["workflow task leases reclaimed"] += 1
            if e.event_type != "ActivityTaskCompleted":
                continue
            scheduled = by_id[int(e.attributes["scheduledEventId"])]
            started = by_id[int(e.attributes["startedEventId"])]
            act = scheduled.attributes["activityId"]
            recorded = int(started.attributes["attempt"])
            attempts = ran.get((wf, act), [])
            figures["activities"] += 1
            figures["executions"] += len(attempts)
            figures["re-executions of cut attempts"] += max(0, len(attempts) - 1)
            if len(set(attempts)) != len(attempts):
                errors.append(f"{wf} activity {act}: an attempt ran twice: {sorted(attempts)}")
            if not attempts or max(attempts) != recorded:
                errors.append(f"{wf} activity {act}: recorded attempt {recorded}, executions {sorted(attempts)}")
    return {"figures": figures, "errors": errors, "reclaimed": reclaimed, "rebuilt": rebuilt, "finished": finished}


def _attempt_timeouts(db: str, killed_at: float) -> tuple[int, float | None]:
    """Activity attempts of the dead worker that timed out (their leases taken back), and the last."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT count(*), max(ended_at) FROM activity_attempts WHERE outcome = 'timed out' AND ended_at >= ?", (killed_at,)
        ).fetchone()
    except sqlite3.Error:
        return 0, None
    finally:
        conn.close()
    return int(row[0]), row[1]


def one_round(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    db = str(folder / "recovery.db")
    log = folder / "executions.log"
    asyncio.run(_start_runs(db, args.workflows))
    first, _, _ = _spawn(db, log, args.slots, hang=True)
    try:
        while _lines(log) < 2 * args.workflows:
            if first.poll() is not None:
                raise SystemExit("the first worker process ended by itself")
            time.sleep(0.005)
        time.sleep(args.settle)  # the last workflow tasks schedule the third activities
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    killed_at = time.time()
    left = _task_states(db)
    open_at_kill = _open_runs(db)
    executions_at_kill = _lines(log)
    second, spawned, t0 = _spawn(db, log, args.slots, hang=False, profile=args.profile)
    try:
        deadline = time.monotonic() + args.timeout
        while _open_runs(db):
            if time.monotonic() > deadline:
                raise SystemExit(f"runs still open after {args.timeout} s")
            time.sleep(0.01)
    finally:
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=30)
    lines = out.decode().splitlines()
    cpu_line = next((line.split() for line in lines if line.startswith("cpu ")), ["cpu", "nan", "0"])
    cpu, replays = float(cpu_line[1]), int(cpu_line[2]) if len(cpu_line) > 2 else 0
    gc_line = next((line.split()[1:] for line in lines if line.startswith("gc ")), ["0"] * 3 + ["nan"] * 3)
    gc_figures = ([int(x) for x in gc_line[:3]], [float(x) for x in gc_line[3:]])
    if args.profile:
        import pstats

        print(f"cProfile of the new worker process until every run closed ({args.profile}):")
        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(args.profile_top)
    histories = asyncio.run(_histories(db, args.workflows))
    checked = _check(histories, log, second.pid, t0, killed_at)
    attempts_timed_out, last_attempt_timeout = _attempt_timeouts(db, killed_at)
    reclaimed = max(checked["reclaimed"], last_attempt_timeout or t0)
    return {
        **checked, "open at kill": open_at_kill, "left": left, "executions at kill": executions_at_kill,
        "python start-up": t0 - spawned, "reclaimed": reclaimed - t0, "rebuilt": checked["rebuilt"] - t0,
        "finished": checked["finished"] - t0, "attempts timed out": attempts_timed_out, "cpu": cpu,
        "replays": replays, "gc": gc_figures,
        "engine": str(Path(sys.modules["engine"].__file__ or "").parent.parent),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--settle", type=float, default=0.1, help="seconds between the last run's second activity and the SIGKILL")
    parser.add_argument("--slots", type=int, default=100, help="workflow-task and activity slots of each worker")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the runs to finish")
    parser.add_argument("--profile", metavar="FILE", default="", help="cProfile the new worker process into FILE and print it")
    parser.add_argument("--profile-top", type=int, default=40)
    parser.add_argument("--serve", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve, args.slots))
        return
    print(f"machine load before: {load()}")
    totals = []
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="recovery-") as folder:
            res = one_round(args, Path(folder))
        totals.append(res["finished"])
        f = res["figures"]
        print(f"round {r + 1} (engine from {res['engine']}): {res['open at kill']} runs open at the SIGKILL ({res['executions at kill']} executions; "
              f"tasks left: {res['left']})")
        print(f"  new worker: Python start-up {res['python start-up']:.2f} s (not counted), then from its Client's start: "
              f"leases reclaimed by {res['reclaimed']:.3f} s ({f['workflow task leases reclaimed']} workflow tasks, "
              f"{res['attempts timed out']} activity attempts), runs rebuilt by {res['rebuilt']:.3f} s, "
              f"all finished at {res['finished']:.3f} s; its CPU {res['cpu']:.3f} s ({1000 * res['cpu'] / args.workflows:.2f} ms per run)")
        (n0, n1, n2), (c0, c1, c2) = res["gc"]
        print(f"  its cycle collector: {n0}/{n1}/{n2} collections of generation 0/1/2, {1000 * (c0 + c1 + c2):.0f} ms of CPU "
              f"({1000 * c0:.0f}/{1000 * c1:.0f}/{1000 * c2:.0f}; {1000 * (c0 + c1 + c2) / args.workflows:.2f} ms per run); "
              f"{res['replays']} instances rebuilt from history")
        print(f"  exactly-once: {f['activities']} activities completed, {f['executions']} executions, "
              f"{f['re-executions of cut attempts']} re-executions of attempts cut by the kill, "
              f"{len(res['errors'])} completed activities run again" + ("" if not res["errors"] else ": " + "; ".join(res["errors"][:5])))
        print(f"  machine load: {load()}")
    if args.rounds > 1:
        print(f"until all finished: median {statistics.median(totals):.3f} s, range {min(totals):.3f}-{max(totals):.3f} s")


if __name__ == "__main__":
    main()
