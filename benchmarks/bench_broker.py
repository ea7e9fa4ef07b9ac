"""corekit on one broker: publish/s and worker consume/s.

    python benchmarks/bench_broker.py [--broker URL] [--tasks 10000] [--pool threads] [-c 4]

``--broker`` defaults to a fresh SQLite file; give ``redis://127.0.0.1:6379/15``
(a database this run may empty) for Redis, ``amqp://guest:guest@127.0.0.1//``
for RabbitMQ (its ``celery`` queue is purged before each run).  Results go to
the broker URL, or ``rpc://`` on RabbitMQ; ``--backend`` chooses another.  Bounded: one run of N no-op tasks
per repetition, medians of 3.  corekit alone for now: the side-by-side
harness with Celery is issue 6.  Not a test: nothing asserts.
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


def run_once(workdir: Path, tasks: int, pool: str, concurrency: int) -> tuple[float, float]:
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
    args = parser.parse_args()
    if args.broker:
        os.environ["BENCH_BROKER"] = args.broker
    if args.backend:
        os.environ["BENCH_BACKEND"] = args.backend
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "bench.py").write_text(PROJ)
        runs = [run_once(workdir, args.tasks, args.pool, args.concurrency)
                for _ in range(args.runs)]
    from corekit import _speedups

    print(f"{args.broker.split('://')[0] if args.broker else 'sqlite'}, {args.tasks} no-op tasks, pool {args.pool} -c {args.concurrency}, "
          f"speedups {_speedups.IMPLEMENTATION}, medians of {args.runs}:")
    print(f"  publish (delay() loop): {statistics.median(r[0] for r in runs):>10,.0f} tasks/s")
    print(f"  consume (worker):       {statistics.median(r[1] for r in runs):>10,.0f} tasks/s")


if __name__ == "__main__":
    main()
