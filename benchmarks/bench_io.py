"""I/O-bound tasks on a green-thread or event-loop pool: wall time for N
tasks that each sleep.

    python benchmarks/bench_io.py --broker redis://127.0.0.1:6379/15 \\
        [--tasks 1000] [--sleep 1.0] [--pool eventlet] [-c 1000] [--json PATH]

The broker database is emptied first: give one this run may own.  One worker
(``python -m corekit ... worker -P POOL -c C``) is started and waited for;
a warm-up batch of 50 tasks sleeping 10 ms runs untimed (imports and first
connections, on both sides); then the N tasks are published in one batch
and the clock runs until every result is back.  With ``-P eventlet`` each task calls ``time.sleep`` (green
once patched); with ``-P asyncio`` it is an ``async def`` awaiting
``asyncio.sleep``; any other pool runs the plain one.  The ideal is
``ceil(N / C) * sleep`` seconds.  Bounded: ``--timeout`` (default 120 s)
for the whole run.  ``--json`` also writes the result as a row (section
"io", metric "io_tasks_per_s") for benchmarks/run.py.  Not a test: nothing
asserts.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJ = '''
import asyncio, os, time
from corekit import Corekit
BROKER = os.environ["BENCH_BROKER"]
app = Corekit("bench", broker=BROKER, backend=BROKER)

@app.task
def nap(seconds):
    time.sleep(seconds)

@app.task
async def anap(seconds):
    await asyncio.sleep(seconds)
'''


def start_worker(workdir: Path, pool: str, concurrency: int, timeout: float) -> Any:
    log = (workdir / "worker.log").open("w")
    worker = subprocess.Popen([sys.executable, "-m", "corekit", "-A", "bench", "worker",
                               "--no-banner", "-l", "info", "-P", pool, "-c", str(concurrency)],
                              cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while "ready." not in (workdir / "worker.log").read_text():
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            sys.exit(f"worker did not start:\n{(workdir / 'worker.log').read_text()}")
        time.sleep(0.05)
    return worker


#: short tasks run, untimed, before the measured batch
WARMUP_TASKS = 50


def send_batch(task: Any, n: int, seconds: float) -> Any:
    """n calls published in one broker round trip (a group)."""
    from corekit import group

    return group(task.s(seconds) for _ in range(n)).apply_async()


def wait_all(results: Any, deadline: float) -> None:
    """Until every result is stored: the group's join reads every pending
    result in one MGET, then waits on the first one still running."""
    results.join(timeout=max(0.0, deadline - time.perf_counter()))


def run(broker: str, tasks: int, seconds: float, pool: str, concurrency: int,
        timeout: float) -> float:
    if broker.startswith("redis"):
        import redis

        redis.Redis.from_url(broker).flushdb()
    os.environ["BENCH_BROKER"] = broker
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "bench.py").write_text(PROJ)
        sys.path.insert(0, tmp)
        import bench

        worker = start_worker(workdir, pool, concurrency, timeout)
        try:
            task = bench.anap if pool == "asyncio" else bench.nap
            # Warm-up, untimed: a first batch pays for imports and first
            # connections on both sides (about 0.2 s here), not for running tasks.
            wait_all(send_batch(task, WARMUP_TASKS, 0.01), time.perf_counter() + timeout)
            start = time.perf_counter()
            results = send_batch(task, tasks, seconds)
            wait_all(results, start + timeout)
            wall = time.perf_counter() - start
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        bench.app.close()
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/15",
                        help="Redis URL of a database this run may empty")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds each task sleeps")
    parser.add_argument("--pool", default="eventlet")
    parser.add_argument("-c", "--concurrency", type=int, default=None,
                        help="pool slots (default: --tasks)")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--json", metavar="PATH", help="also write the result row here")
    args = parser.parse_args()
    concurrency = args.concurrency or args.tasks
    wall = run(args.broker, args.tasks, args.sleep, args.pool, concurrency, args.timeout)
    ideal = math.ceil(args.tasks / concurrency) * args.sleep
    print(f"{args.tasks} tasks sleeping {args.sleep:g} s, -P {args.pool} -c {concurrency}: "
          f"{wall:.2f} s wall (ideal {ideal:g} s), {args.tasks / wall:.0f} tasks/s")
    if args.json:
        row = {"section": "io", "broker": args.broker.split("://")[0], "pool": args.pool,
               "metric": "io_tasks_per_s", "unit": "tasks/s", "celery": None,
               "corekit": round(args.tasks / wall, 1), "better": "higher",
               "tasks": args.tasks, "sleep": args.sleep, "concurrency": concurrency,
               "note": f"{args.tasks} tasks sleeping {args.sleep:g} s, -c {concurrency}: "
                       f"{wall:.2f} s wall (ideal {ideal:g} s)"}
        with open(args.json, "w") as out:
            json.dump({"machine": {}, "rows": [row]}, out, indent=1)


if __name__ == "__main__":
    main()
