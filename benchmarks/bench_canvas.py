"""Canvas on Redis, Celery beside corekit: how long a group and a chord of N
``add`` tasks take to publish and to complete.

    python benchmarks/bench_canvas.py [--redis URL] [--tasks 1000] [--repeat 3] [-c 4]
        [--json PATH]

Without ``--redis`` a throwaway ``redis-server`` is started on a free loopback
port in a temporary directory and stopped at the end; with it, databases 1
(Celery) and 2 (corekit) of that server are emptied before each repetition.
Each repetition, for each system in turn: empty its database, start one real
worker (``-P threads -c C``), wait for a probe task's result, then time
``group(add.s(i, i) for i in range(N)).apply_async()`` (publish) and its
``get()`` (complete), then the same for ``chord(..., tsum.s())``.  Both
clients run in this process with the same code; results are checked.  The
table shows medians and Celery time / corekit time (how many times faster
corekit is).  Bounded: ``--timeout`` seconds per step (default 120); workers
and the server are stopped in a ``finally``.  ``--json`` also writes the
medians as rows (section "canvas", seconds) for benchmarks/run.py.  Not a
test: nothing asserts.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator

from servers import redis_server

CELERY_PROJ = '''
import os
from celery import Celery
URL = os.environ["BENCH_CELERY_URL"]
app = Celery("benchc", broker=URL, backend=URL)
app.conf.broker_connection_retry_on_startup = True

@app.task
def add(x, y):
    return x + y

@app.task
def tsum(numbers):
    return sum(numbers)
'''

COREKIT_PROJ = '''
import os
from corekit import Corekit
URL = os.environ["BENCH_COREKIT_URL"]
app = Corekit("benchk", broker=URL, backend=URL)

@app.task
def add(x, y):
    return x + y

@app.task
def tsum(numbers):
    return sum(numbers)
'''

STEPS = ("group publish", "group complete", "chord publish", "chord complete")


class StepTimeout(Exception):
    pass


@contextmanager
def bounded(seconds: float, what: str) -> Iterator[None]:
    """SIGALRM after ``seconds``: a publish or a wait that hangs ends the run."""
    def expire(signum: int, frame: Any) -> None:
        raise StepTimeout(f"{what}: no answer in {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def with_db(url: str, db: int) -> str:
    scheme, rest = url.split("://", 1)
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{db}"


class System:
    """One side of the comparison: its project module, worker command and URL."""

    def __init__(self, name: str, module: str, url: str, worker_cmd: list[str],
                 workdir: Path) -> None:
        self.name, self.url, self.worker_cmd, self.workdir = name, url, worker_cmd, workdir
        self.proj = importlib.import_module(module)
        canvas = importlib.import_module("celery" if name == "Celery" else "corekit")
        self.group, self.chord = canvas.group, canvas.chord
        self.worker: subprocess.Popen[bytes] | None = None

    def start_worker(self, timeout: float) -> None:
        import redis

        redis.Redis.from_url(self.url).flushdb()
        log = self.workdir / f"{self.name}-worker.log"
        with log.open("wb") as out:
            self.worker = subprocess.Popen(self.worker_cmd, cwd=self.workdir,
                                           stdout=out, stderr=subprocess.STDOUT)
        try:
            with bounded(timeout, f"{self.name} worker start"):
                probe = self.proj.add.delay(1, 1)
                while not probe.ready():
                    if self.worker.poll() is not None:
                        raise RuntimeError(f"{self.name} worker exited "
                                           f"({self.worker.returncode})")
                    time.sleep(0.05)
                assert probe.get(timeout=timeout) == 2
        except BaseException:
            self.stop_worker()
            sys.stderr.write(f"{self.name} worker log:\n{log.read_text(errors='replace')}\n")
            raise

    def stop_worker(self) -> None:
        if self.worker is None:
            return
        if self.worker.poll() is None:
            self.worker.send_signal(signal.SIGTERM)
            try:
                self.worker.wait(30)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait(10)
        self.worker = None

    def run(self, n: int, timeout: float) -> list[float]:
        """Seconds for each of STEPS."""
        add, tsum = self.proj.add, self.proj.tsum
        with bounded(timeout, f"{self.name} group publish"):
            t0 = time.perf_counter()
            res = self.group(add.s(i, i) for i in range(n)).apply_async()
            t1 = time.perf_counter()
        with bounded(timeout, f"{self.name} group complete"):
            values = res.get(timeout=timeout)
            t2 = time.perf_counter()
        check(self.name, "group", values, [2 * i for i in range(n)])
        with bounded(timeout, f"{self.name} chord publish"):
            t3 = time.perf_counter()
            res = self.chord((add.s(i, i) for i in range(n)), tsum.s()).apply_async()
            t4 = time.perf_counter()
        with bounded(timeout, f"{self.name} chord complete"):
            value = res.get(timeout=timeout)
            t5 = time.perf_counter()
        check(self.name, "chord", value, n * (n - 1))
        return [t1 - t0, t2 - t0, t4 - t3, t5 - t3]


def check(system: str, what: str, got: Any, want: Any) -> None:
    if got != want:
        sys.exit(f"{system} {what} returned a wrong result: {str(got)[:200]}")


def machine(url: str) -> str:
    import celery  # type: ignore[import-untyped]
    import redis

    from corekit import _speedups

    server = redis.Redis.from_url(url).info("server")["redis_version"]
    return (f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"redis-server {server}, celery {celery.__version__}, "
            f"corekit speedups {_speedups.IMPLEMENTATION}")


def medians(results: dict[str, list[list[float]]]) -> dict[str, list[float]]:
    return {name: [statistics.median(r[i] for r in runs) for i in range(len(STEPS))]
            for name, runs in results.items()}


def write_json(path: str, results: dict[str, list[list[float]]], args: argparse.Namespace
               ) -> None:
    med = medians(results)
    rows = [{"section": "canvas", "broker": "redis", "pool": "threads",
             "metric": f"{step.replace(' ', '_')}_{args.tasks}", "unit": "s",
             "celery": round(med["Celery"][i], 4), "corekit": round(med["corekit"][i], 4),
             "better": "lower"} for i, step in enumerate(STEPS)]
    with open(path, "w") as out:
        json.dump({"machine": {}, "rows": rows}, out, indent=1)


def table(results: dict[str, list[list[float]]], n: int, repeat: int, c: int) -> str:
    med = medians(results)
    lines = [f"{n}-task group and chord on Redis, -P threads -c {c}, medians of {repeat}:",
             f"  {'':<16}{'Celery s':>10}{'corekit s':>11}{'ratio':>8}"]
    for i, step in enumerate(STEPS):
        cel, kit = med["Celery"][i], med["corekit"][i]
        lines.append(f"  {step:<16}{cel:>10.3f}{kit:>11.3f}{cel / kit:>7.1f}x")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", default="",
                        help="a Redis server whose databases 1 and 2 this run may empty "
                             "(default: start a throwaway redis-server)")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("-c", "--concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per step")
    parser.add_argument("--json", metavar="PATH", help="also write the medians as rows here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        base = args.redis or stack.enter_context(redis_server()).url
        print(bench(Path(tmp), base, args))


def bench(workdir: Path, base: str, args: argparse.Namespace) -> str:
    os.environ["BENCH_CELERY_URL"] = with_db(base, 1)
    os.environ["BENCH_COREKIT_URL"] = with_db(base, 2)
    (workdir / "benchc.py").write_text(CELERY_PROJ)
    (workdir / "benchk.py").write_text(COREKIT_PROJ)
    sys.path.insert(0, str(workdir))
    pool = ["--pool", "threads", "-c", str(args.concurrency), "-l", "warning"]
    systems = [
        System("Celery", "benchc", os.environ["BENCH_CELERY_URL"],
               [sys.executable, "-m", "celery", "-A", "benchc", "worker", *pool,
                "--without-heartbeat", "--without-gossip", "--without-mingle"], workdir),
        System("corekit", "benchk", os.environ["BENCH_COREKIT_URL"],
               [sys.executable, "-m", "corekit", "-A", "benchk", "worker", "--no-banner",
                *pool], workdir),
    ]
    results: dict[str, list[list[float]]] = {s.name: [] for s in systems}
    try:
        for _ in range(args.repeat):
            for system in systems:
                system.start_worker(args.timeout)
                try:
                    results[system.name].append(system.run(args.tasks, args.timeout))
                finally:
                    system.stop_worker()
    finally:
        for system in systems:
            system.stop_worker()
    if args.json:
        write_json(args.json, results, args)
    return f"{machine(base)}\n{table(results, args.tasks, args.repeat, args.concurrency)}"


if __name__ == "__main__":
    main()
