"""corekit on one broker: publish/s and worker consume/s.

    python benchmarks/bench_broker.py [--broker URL] [--tasks 10000] [--pool threads] [-c 4]
                                      [--beat-runs]

``--broker`` defaults to a fresh SQLite file; give ``redis://127.0.0.1:6379/15``
(a database this run may empty) for Redis, ``amqp://guest:guest@127.0.0.1//``
for RabbitMQ (its ``celery`` queue is purged before each run).  Results go to
the broker URL, or ``rpc://`` on RabbitMQ; ``--backend`` chooses another.  Bounded: one run of N no-op tasks
per repetition, medians of 3.  corekit alone for now: the side-by-side
harness with Celery is issue 6.  Not a test: nothing asserts.

``--beat-runs`` sends each task as a periodic task's run sent in two steps
(the ``corekit_beat_run`` header, a run claimed in the schedule store), so
the worker asks the store's ``take_run`` before each: what that check costs
(on RabbitMQ give ``--backend redis://...`` or ``sqlite://...``: the store).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJ = '''
import os
from corekit import Corekit
BROKER = os.environ.get("BENCH_BROKER") or "sqlite://bench.db"
BACKEND = os.environ.get("BENCH_BACKEND") or ("rpc://" if BROKER.startswith("amqp") else BROKER)
app = Corekit("bench", broker=BROKER, backend=BACKEND)

@app.task
def noop():
    return None
'''


def claimed_runs(app, tasks: int) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def]
    """*tasks* runs claimed in *app*'s schedule store: (task id, headers) each."""
    import uuid

    from corekit.plugins.beat.messages import RUN_HEADER
    from corekit.schedules.entry import entry_from_config
    from corekit.schedules.periodic import open_store
    from corekit.schedules.store import Run

    store = open_store(app)
    store.put("bench", entry_from_config("bench", {"task": "bench.noop",
                                                   "schedule": 1.0}).to_json())
    assert store.acquire_lease("bench", 600)
    runs = [Run("bench", float(i), str(uuid.uuid4())) for i in range(1, tasks + 1)]
    for start in range(0, tasks, 500):
        store.claim_runs("bench", runs[start:start + 500])
    store.confirm_runs(runs)
    store.release_lease("bench")
    store.close()
    return [(r.task_id, {RUN_HEADER: [r.name, r.scheduled_at, "send-1"]}) for r in runs]


def run_once(workdir: Path, tasks: int, pool: str, concurrency: int, beat_runs: bool
             ) -> tuple[float, float]:
    for f in workdir.glob("bench.db*"):
        f.unlink()
    if os.environ.get("BENCH_BROKER", "").startswith("redis"):
        import redis

        redis.Redis.from_url(os.environ["BENCH_BROKER"]).flushdb()
    sys.path.insert(0, str(workdir))
    os.chdir(workdir)
    import importlib

    bench = importlib.import_module("bench")
    importlib.reload(bench)
    noop = bench.noop
    if bench.BROKER.startswith("amqp"):
        bench.app.connection().purge(["celery"])
    if beat_runs:
        runs = claimed_runs(bench.app, tasks)
        start = time.perf_counter()
        results = [noop.apply_async(task_id=i, headers=h) for i, h in runs]
    else:
        start = time.perf_counter()
        results = [noop.delay() for _ in range(tasks)]
    publish = tasks / (time.perf_counter() - start)
    worker = subprocess.Popen([sys.executable, "-m", "corekit", "-A", "bench", "worker",
                               "--no-banner", "-l", "info", "-P", pool, "-c", str(concurrency)],
                              cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    assert worker.stdout is not None
    for line in worker.stdout:
        if "ready." in line:
            break
    start = time.perf_counter()
    transport = bench.app.connection()
    deadline = time.monotonic() + 300
    while transport.queue_size("celery") and time.monotonic() < deadline:
        time.sleep(0.01)
    results[-1].get(timeout=60)
    consume = tasks / (time.perf_counter() - start)
    worker.terminate()
    worker.wait(60)
    bench.app.close()
    return publish, consume


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="", help="default: a fresh SQLite file")
    parser.add_argument("--backend", default="", help="default: the broker URL (rpc:// on amqp)")
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--pool", default="threads")
    parser.add_argument("-c", "--concurrency", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--beat-runs", action="store_true",
                        help="each task a periodic run the worker checks with the store")
    args = parser.parse_args()
    if args.broker:
        os.environ["BENCH_BROKER"] = args.broker
    if args.backend:
        os.environ["BENCH_BACKEND"] = args.backend
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "bench.py").write_text(PROJ)
        runs = [run_once(workdir, args.tasks, args.pool, args.concurrency, args.beat_runs)
                for _ in range(args.runs)]
    from corekit import _speedups

    kind = "periodic runs checked with the store" if args.beat_runs else "no-op tasks"
    print(f"{args.broker.split('://')[0] if args.broker else 'sqlite'}, {args.tasks} {kind}, "
          f"pool {args.pool} -c {args.concurrency}, "
          f"speedups {_speedups.IMPLEMENTATION}, medians of {args.runs}:")
    print(f"  publish (delay() loop): {statistics.median(r[0] for r in runs):>10,.0f} tasks/s")
    print(f"  consume (worker):       {statistics.median(r[1] for r in runs):>10,.0f} tasks/s")


if __name__ == "__main__":
    main()
