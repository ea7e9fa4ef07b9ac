"""corekit beside Celery on the same broker, the same machine, in the same run:
publish and consume rates of a no-op task, round-trip latency, worker start-up.

    python benchmarks/bench_vs_celery.py [--tasks 10000] [--repeat 3] [--latency-calls 1000]
        [--brokers redis,amqp,sqlite] [--pools solo,threads,prefork] [--timeout 300]
        [--json PATH]

A throwaway ``redis-server`` (and, for ``amqp``, a RabbitMQ node) is started
on loopback with ``benchmarks/servers.py`` and stopped at the end.  Celery
uses Redis databases 1 (broker) and 2 (results), corekit 3 and 4; on RabbitMQ
each run gets a vhost of its own and results still go to Redis.  ``sqlite``
is corekit alone (Celery has no SQLite transport), broker and results in one
fresh file per run.  Pools: ``solo -c 1``, ``threads -c 4``, ``prefork -c 2``,
the same for both systems.  Every run uses default settings apart from the
URLs, and a real worker subprocess.

Per (broker, pool, system), in each repetition:

* ``publish_group``: ``group(noop.s() for _ in range(N)).apply_async()``,
  no worker running; the queue is then purged;
* ``publish_delay``: N ``noop.delay()`` calls, no worker running;
* ``consume``: a worker starts on those N queued tasks; the rate counts from
  its ``worker_ready`` signal (the project module writes the time) until the
  N results are stored (the results store is polled every 10 ms); every
  result is then checked.

With ``threads -c 4`` on ``redis`` and ``amqp`` a second worker then starts on
an empty queue: ``startup`` is the time from spawning it to its
``worker_ready`` (reported on ``redis``), and ``latency`` is M sequential
``add.delay(i, i).get(timeout=10)`` after 50 warm-up calls (p50 and p99).

Celery's solo pool on RabbitMQ now and then sits up to 10 s in its event
loop's poll (kombu's hub) while messages wait; that lands in its consume
rate, as it would in production.

The table shows medians over the repetitions and how many times better
corekit is (corekit/Celery for rates, Celery/corekit for times).  The
systems take turns going first.  Bounded: ``--timeout`` seconds per step;
workers and servers are stopped in a ``finally``.  Not a test: nothing
asserts; a wrong result ends the run with a message.

The two sides (project modules, worker subprocesses, the client steps that
differ) are in ``benchmarks/vs_celery_sides.py``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_canvas import bounded  # noqa: E402
from servers import rabbitmq_server, redis_server  # noqa: E402
from vs_celery_sides import (CELERY_PROJ, COREKIT_PROJ, POLL, POOLS, System,  # noqa: E402
                             Target, Worker, WrongResult, flush, log)

BROKERS = ("redis", "amqp", "sqlite")
WARMUP = 50
#: (metric, unit, "higher"|"lower" is better), in table order
METRICS = {"publish_delay": ("tasks/s", "higher"), "publish_group": ("tasks/s", "higher"),
           "consume": ("tasks/s", "higher"), "latency_p50": ("ms", "lower"),
           "latency_p99": ("ms", "lower"), "startup": ("s", "lower")}


def stored_counter(target: Target) -> Callable[[], int]:
    """A cheap count of the results stored so far."""
    if target.results_redis:
        import redis

        client = redis.Redis.from_url(target.results_redis)
        return lambda: int(client.dbsize())
    assert target.sqlite_path is not None
    path = target.sqlite_path

    def count() -> int:
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
            try:
                return int(db.execute("SELECT count(*) FROM results").fetchone()[0])
            finally:
                db.close()
        except sqlite3.OperationalError:  # the worker has not made the table yet
            return 0
    return count


def all_stored(target: Target, ids: list[str], count: Callable[[], int]) -> bool:
    if count() < len(ids):
        return False
    if not target.results_redis:
        return True
    import redis  # dbsize counts keys: confirm these very results are there

    client = redis.Redis.from_url(target.results_redis)
    try:
        return int(client.exists(*(f"celery-task-meta-{i}" for i in ids))) == len(ids)
    finally:
        client.close()


def run_throughput(system: System, target: Target, pool: str, n: int, timeout: float,
                   tag: str) -> dict[str, float]:
    app, noop, _ = system.make_app(target)
    group = system.canvas.group
    worker = None
    try:
        with bounded(timeout, f"{system.name} publish_group"):
            t0 = time.perf_counter()
            group(noop.s() for _ in range(n)).apply_async()
            publish_group = n / (time.perf_counter() - t0)
        with bounded(timeout, f"{system.name} purge"):
            system.purge(app, target, n, timeout)
        with bounded(timeout, f"{system.name} publish_delay"):
            t0 = time.perf_counter()
            ids = [noop.delay().id for _ in range(n)]
            publish_delay = n / (time.perf_counter() - t0)
        count = stored_counter(target)
        worker = Worker(system, target, pool, tag)
        with bounded(timeout, f"{system.name} worker start ({pool})"):
            ready = worker.wait_ready()
        with bounded(timeout, f"{system.name} consume ({pool})"):
            while not all_stored(target, ids, count):
                worker.check_alive()
                time.sleep(POLL)
            consume = n / (time.time() - ready)
        with bounded(timeout, f"{system.name} result check"):
            system.check_results(app, ids)
        return {"publish_group": publish_group, "publish_delay": publish_delay,
                "consume": consume}
    except BaseException:
        if worker is not None:
            log(f"{system.name} worker log ({worker.log_path}) ends:\n{worker.log_tail()}")
        raise
    finally:
        if worker is not None:
            worker.stop()
        system.close_app(app)


def run_latency(system: System, target: Target, calls: int, timeout: float,
                tag: str) -> dict[str, float]:
    """Start-up of a worker on an empty queue, then sequential round trips."""
    app, _, add = system.make_app(target)
    if target.broker == "redis":
        flush(target.broker_url)
    if target.results_redis:
        flush(target.results_redis)
    worker = Worker(system, target, "threads", tag)
    try:
        with bounded(timeout, f"{system.name} worker start (threads, latency)"):
            startup = worker.wait_ready() - worker.spawned
        times = []
        with bounded(timeout, f"{system.name} latency"):
            for i in range(WARMUP + calls):
                t0 = time.perf_counter()
                value = add.delay(i, i).get(timeout=10)
                dt = time.perf_counter() - t0
                if value != 2 * i:
                    raise WrongResult(f"{system.name}: add({i}, {i}) returned {value!r}")
                if i >= WARMUP:
                    times.append(dt * 1000)
        times.sort()
        p99 = times[max(0, math.ceil(0.99 * len(times)) - 1)]
        return {"startup": startup, "latency_p50": statistics.median(times), "latency_p99": p99}
    except BaseException:
        log(f"{system.name} worker log ({worker.log_path}) ends:\n{worker.log_tail()}")
        raise
    finally:
        worker.stop()
        system.close_app(app)


@dataclass
class Results:
    #: (broker, pool, metric) -> system name -> one value per repetition
    values: dict[tuple[str, str, str], dict[str, list[float]]] = field(default_factory=dict)

    def add(self, broker: str, pool: str, system: str, metrics: dict[str, float]) -> None:
        for metric, value in metrics.items():
            self.values.setdefault((broker, pool, metric), {}).setdefault(system, []).append(value)

    def rows(self) -> list[dict[str, Any]]:
        out = []
        order = {m: i for i, m in enumerate(METRICS)}
        keys = sorted(self.values, key=lambda k: (BROKERS.index(k[0]), list(POOLS).index(k[1]),
                                                  order[k[2]]))
        for broker, pool, metric in keys:
            per = self.values[(broker, pool, metric)]
            if "corekit" not in per:
                continue
            unit, better = METRICS[metric]
            section = ("startup" if metric == "startup" else
                       "latency" if metric.startswith("latency") else "throughput")
            celery = statistics.median(per["Celery"]) if "Celery" in per else None
            out.append({"section": section, "broker": broker, "pool": pool, "metric": metric,
                        "unit": unit, "celery": celery,
                        "corekit": statistics.median(per["corekit"]), "better": better})
        return out


def ratio(row: dict[str, Any]) -> float | None:
    cel, kit = row["celery"], row["corekit"]
    if cel is None or not cel or not kit:
        return None
    return float(kit / cel if row["better"] == "higher" else cel / kit)


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if unit == "tasks/s" else f"{value:,.2f}"


def table(rows: list[dict[str, Any]], machine: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [f"corekit beside Celery: {args.tasks:,} no-op tasks, latency {args.latency_calls:,} "
             f"calls after {WARMUP} warm-up, medians of {args.repeat}; ratio = how many times "
             f"better corekit is",
             "machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()),
             f"{'broker':<7} {'pool':<12} {'metric':<14} {'unit':<8}{'Celery':>10}"
             f"{'corekit':>10}{'ratio':>8}"]
    for row in rows:
        r = ratio(row)
        pool = f"{row['pool']} -c {POOLS[row['pool']]}"
        lines.append(f"{row['broker']:<7} {pool:<12} {row['metric']:<14} {row['unit']:<8}"
                     f"{fmt(row['celery'], row['unit']):>10}{fmt(row['corekit'], row['unit']):>10}"
                     f"{'—' if r is None else f'{r:.2f}x':>8}")
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def command_version(*cmd: str) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return done.stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def machine_info(redis: Any, rabbit: Any) -> dict[str, Any]:
    import celery  # type: ignore[import-untyped]

    import corekit
    from corekit import _speedups

    if redis is not None:
        redis_version = redis.version
    else:
        words = command_version("redis-server", "--version").split()
        redis_version = next((w[2:] for w in words if w.startswith("v=")), "unknown")
    rabbit_version = (rabbit.version if rabbit is not None else
                      command_version("dpkg-query", "-W", "-f=${Version}", "rabbitmq-server"))
    return {"cpus": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version(),
            "celery": celery.__version__, "redis-server": redis_version,
            "rabbitmq": rabbit_version, "corekit": corekit.__version__,
            "speedups": _speedups.IMPLEMENTATION}


def parse_list(value: str, allowed: Any) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in allowed]
    if unknown or not items:
        raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}; got {value!r}")
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10000, help="N, tasks per throughput step")
    parser.add_argument("--latency-calls", type=int, default=1000, help="M round trips")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (medians)")
    parser.add_argument("--brokers", type=lambda v: parse_list(v, BROKERS),
                        default=list(BROKERS))
    parser.add_argument("--pools", type=lambda v: parse_list(v, POOLS), default=list(POOLS))
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per step")
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="corekit-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        (workdir / "benchc.py").write_text(CELERY_PROJ)
        (workdir / "benchk.py").write_text(COREKIT_PROJ)
        sys.path.insert(0, str(workdir))
        needs_redis = any(b in args.brokers for b in ("redis", "amqp"))
        redis = stack.enter_context(redis_server()) if needs_redis else None
        rabbit = stack.enter_context(rabbitmq_server()) if "amqp" in args.brokers else None
        machine = machine_info(redis, rabbit)
        results = bench(workdir, redis, rabbit, args)
    rows = results.rows()
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    log(f"took {time.monotonic() - started:.0f} s")
    print(table(rows, machine, args))


def targets(system: str, broker: str, redis: Any, rabbit: Any, workdir: Path,
            tag: str) -> Target:
    if broker == "sqlite":
        path = workdir / f"{tag}.sqlite3"
        for f in workdir.glob(f"{tag}.sqlite3*"):
            f.unlink()
        return Target("sqlite", f"sqlite://{path}", f"sqlite://{path}", "", path)
    base = 1 if system == "Celery" else 3
    results = redis.db_url(base + 1)
    url = redis.db_url(base) if broker == "redis" else rabbit.fresh_url()
    flush(results)
    if broker == "redis":
        flush(url)
    return Target(broker, url, results, results)


def bench(workdir: Path, redis: Any, rabbit: Any, args: argparse.Namespace) -> Results:
    systems = [System("Celery", "benchc", workdir), System("corekit", "benchk", workdir)]
    results = Results()
    for rep in range(args.repeat):
        for broker in args.brokers:
            for pool in args.pools:
                turn = systems if rep % 2 == 0 else systems[::-1]
                for system in turn:
                    if broker == "sqlite" and system.name == "Celery":
                        continue
                    tag = f"{system.module}-{broker}-{pool}-{rep}"
                    target = targets(system.name, broker, redis, rabbit, workdir, tag)
                    got = run_throughput(system, target, pool, args.tasks, args.timeout, tag)
                    if pool == "threads" and broker != "sqlite":
                        more = run_latency(system, target, args.latency_calls, args.timeout,
                                           tag + "-latency")
                        if broker != "redis":
                            del more["startup"]
                        got.update(more)
                    results.add(broker, pool, system.name, got)
                    log(f"[{rep + 1}/{args.repeat}] {broker} {pool} {system.name}: " +
                        ", ".join(f"{k} {v:,.2f}" for k, v in got.items()))
                    if target.sqlite_path is not None:
                        for f in workdir.glob(f"{tag}.sqlite3*"):
                            f.unlink()
    return results


if __name__ == "__main__":
    main()
