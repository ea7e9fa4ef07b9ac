"""Worker memory: resident set size idle, and with many ETA tasks waiting.

    python benchmarks/bench_memory.py [--brokers redis,sqlite,amqp] [--eta-tasks 100000]
        [--no-celery] [--json PATH] [--timeout 300]

For each broker, one real worker (``-P threads -c 4``) is started on a
throwaway server (``benchmarks/servers.py``; SQLite: a fresh file) and
waited for.  Its RSS (``VmRSS`` from ``/proc/PID/status``, the main process
plus every descendant) is read once it is ready and has been idle 2 s, then
``noop.apply_async(countdown=3600)`` is published N times (groups of 1,000,
each group one batch) and RSS is read again:

- corekit, after the worker has had 10 s to see them.  corekit keeps ETA
  tasks on the broker until they are due, so RSS should stay flat; the
  broker is asked how many are still waiting there (where it can count its
  delayed messages: Redis and SQLite).
- Celery (Redis only), after at least the same 10 s, once RSS has not grown
  for 5 s, or at 120 s if it still grows (the output says which).  Celery
  prefetches ETA tasks into the worker and holds them in its timer.

Bounded: ``--timeout`` seconds (default 600) for each worker start and each publish;
workers and servers are stopped in a ``finally``.  Not a test: nothing asserts.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

from bench_canvas import bounded

COREKIT_PROJ = '''
import os
from corekit import Corekit
BROKER = os.environ["BENCH_BROKER"]
app = Corekit("memk", broker=BROKER, backend="rpc://" if BROKER.startswith("amqp") else BROKER)

@app.task
def noop():
    return None
'''

CELERY_PROJ = '''
import os
from celery import Celery
URL = os.environ["BENCH_CELERY_URL"]
app = Celery("memc", broker=URL, backend=URL)
app.conf.broker_connection_retry_on_startup = True

@app.task
def noop():
    return None
'''

BATCH = 1000
IDLE_SETTLE = 2.0
COREKIT_WAIT = 10.0
CELERY_STABLE, CELERY_MAX = 5.0, 120.0
GROWTH_EPSILON_MB = 0.5


def rss_mb(pid: int) -> float:
    """VmRSS of *pid* and all its descendants, in MB (a process that is gone counts 0)."""
    total_kb, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
                    break
            for task in Path(f"/proc/{p}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total_kb / 1024


class Worker:
    """One worker process of either system, started and waited for by its log."""

    def __init__(self, name: str, cmd: list[str], workdir: Path) -> None:
        self.name, self.cmd, self.workdir = name, cmd, workdir
        self.log = workdir / f"{name}-worker.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float) -> int:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(self.cmd, cwd=self.workdir, stdout=out,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while "ready." not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} worker did not start:\n"
                                   f"{self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


def publish(group: Any, task: Any, n: int, timeout: float, what: str) -> float:
    """N ``task.apply_async(countdown=3600)`` in groups of BATCH; seconds taken."""
    start = time.perf_counter()
    with bounded(timeout, f"{what} publish"):
        for first in range(0, n, BATCH):
            group(task.s() for _ in range(min(BATCH, n - first))).apply_async(countdown=3600)
    return time.perf_counter() - start


def idle_rss(pid: int) -> float:
    time.sleep(IDLE_SETTLE)
    return rss_mb(pid)


def wait_stable(pid: int, alive: Callable[[], bool]) -> tuple[float, str]:
    """RSS once it has not grown for CELERY_STABLE s (at least COREKIT_WAIT s
    after publishing ended), or at CELERY_MAX s; with how it ended."""
    start = time.monotonic()
    samples: list[tuple[float, float]] = []
    while True:
        now = time.monotonic() - start
        samples.append((now, rss_mb(pid)))
        if not alive():
            return samples[-1][1], f"worker exited after {now:.0f} s"
        earlier = [rss for t, rss in samples if t <= now - CELERY_STABLE]
        if now >= COREKIT_WAIT and earlier and samples[-1][1] - earlier[-1] <= GROWTH_EPSILON_MB:
            return samples[-1][1], f"stable for {CELERY_STABLE:g} s at {now:.0f} s"
        if now >= CELERY_MAX:
            return samples[-1][1], f"still growing at {CELERY_MAX:g} s"
        time.sleep(0.5)


def fresh_module(workdir: Path, name: str, source: str) -> Any:
    import importlib

    (workdir / f"{name}.py").write_text(source)
    if str(workdir) not in sys.path:
        sys.path.insert(0, str(workdir))
    sys.modules.pop(name, None)
    return importlib.import_module(name)


def empty_broker(url: str, workdir: Path) -> None:
    if url.startswith("redis"):
        import redis

        redis.Redis.from_url(url).flushdb()
    elif url.startswith("sqlite"):
        for f in workdir.glob("mem*.sqlite3*"):
            f.unlink()


def bench_corekit(broker: str, url: str, workdir: Path, n: int, timeout: float
                  ) -> dict[str, Any]:
    empty_broker(url, workdir)
    os.environ["BENCH_BROKER"] = url
    proj = fresh_module(workdir, "memk", COREKIT_PROJ)
    if url.startswith("amqp"):
        proj.app.connection().purge(["celery"])
    from corekit import group

    worker = Worker(f"corekit-{broker}", [sys.executable, "-m", "corekit", "-A", "memk",
                                          "worker", "--no-banner", "-l", "info",
                                          "-P", "threads", "-c", "4"], workdir)
    try:
        pid = worker.start(timeout)
        idle = idle_rss(pid)
        took = publish(group, proj.noop, n, timeout, f"corekit {broker}")
        time.sleep(COREKIT_WAIT)
        eta = rss_mb(pid)
        transport = proj.app.connection()
        queued = (f"{transport.queue_size('celery'):,} of {n:,} still on the broker"
                  if "delayed_counted" in transport.capabilities else
                  "the broker cannot count its delayed messages")
        if worker.proc is None or worker.proc.poll() is not None:
            raise RuntimeError(f"corekit worker on {broker} exited while waiting:\n"
                               f"{worker.log.read_text(errors='replace')[-2000:]}")
    finally:
        worker.stop()
        proj.app.close()
    return {"idle": idle, "eta": eta, "publish_s": took,
            "note": f"measured {COREKIT_WAIT:g} s after publishing; {queued}"}


def bench_celery(url: str, workdir: Path, n: int, timeout: float) -> dict[str, Any]:
    import redis
    from celery import group

    empty_broker(url, workdir)
    os.environ["BENCH_CELERY_URL"] = url
    proj = fresh_module(workdir, "memc", CELERY_PROJ)
    worker = Worker("celery-redis", [sys.executable, "-m", "celery", "-A", "memc", "worker",
                                     "-l", "info", "-P", "threads", "-c", "4",
                                     "--without-heartbeat", "--without-gossip",
                                     "--without-mingle"], workdir)
    try:
        pid = worker.start(timeout)
        idle = idle_rss(pid)
        took = publish(group, proj.noop, n, timeout, "Celery redis")
        eta, how = wait_stable(pid, lambda: worker.proc is not None and
                               worker.proc.poll() is None)
        left = redis.Redis.from_url(url).llen("celery")
    finally:
        worker.stop()
        proj.app.close()
    return {"idle": idle, "eta": eta, "publish_s": took,
            "note": f"measured when {how} after publishing; {n - left:,} of {n:,} "
                    "taken off the broker by the worker"}


def rows_for(broker: str, kit: dict[str, Any], cel: dict[str, Any] | None,
             n: int) -> list[dict[str, Any]]:
    label = f"{n // 1000}k" if n % 1000 == 0 else str(n)
    values = [("rss_idle", "idle"), (f"rss_eta_{label}", "eta"), ("rss_growth", None)]
    out = []
    for metric, key in values:
        def pick(r: dict[str, Any] | None) -> float | None:
            if r is None:
                return None
            return round(r[key] if key else r["eta"] - r["idle"], 1)
        out.append({"section": "memory", "broker": broker, "pool": "threads",
                    "concurrency": 4, "metric": metric, "unit": "MB", "celery": pick(cel),
                    "corekit": pick(kit), "better": "lower"})
    out[1]["note"] = "; ".join(f"{who}: {r['note']}" for who, r in
                               (("corekit", kit), ("Celery", cel)) if r)
    return out


def machine() -> dict[str, Any]:
    from corekit import _speedups

    info = {"cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "speedups": _speedups.IMPLEMENTATION}
    try:
        import celery

        info["celery"] = celery.__version__
    except ImportError:
        pass
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default="redis,sqlite,amqp",
                        help="comma-separated, of redis, sqlite, amqp")
    parser.add_argument("--eta-tasks", type=int, default=100000)
    parser.add_argument("--no-celery", action="store_true", help="corekit only")
    parser.add_argument("--json", metavar="PATH", help="also write the rows here")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds for each worker start and each publish")
    args = parser.parse_args()
    brokers = [b.strip() for b in args.brokers.split(",") if b.strip()]
    unknown = set(brokers) - {"redis", "sqlite", "amqp"}
    if unknown:
        parser.error(f"unknown broker(s): {', '.join(sorted(unknown))}")
    import servers

    n, rows = args.eta_tasks, []
    print(f"worker RSS, -P threads -c 4, {n:,} ETA tasks (countdown 3600 s):")
    print(f"  {'broker':<8}{'system':<9}{'idle MB':>9}{'ETA MB':>9}{'growth':>9}"
          f"{'publish s':>11}  note")
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        for broker in brokers:
            if broker == "redis":
                redis = stack.enter_context(servers.redis_server())
                url = redis.db_url(2)
            elif broker == "amqp":
                url = stack.enter_context(servers.rabbitmq_server()).url
            else:
                url = f"sqlite://{workdir}/mem.sqlite3"
            kit = bench_corekit(broker, url, workdir, n, args.timeout)
            report(broker, "corekit", kit)
            cel = None
            if broker == "redis" and not args.no_celery:
                cel = bench_celery(redis.db_url(1), workdir, n, args.timeout)
                report(broker, "Celery", cel)
            rows += rows_for(broker, kit, cel, n)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))


def report(broker: str, system: str, r: dict[str, Any]) -> None:
    print(f"  {broker:<8}{system:<9}{r['idle']:>9.1f}{r['eta']:>9.1f}"
          f"{r['eta'] - r['idle']:>+9.1f}{r['publish_s']:>11.1f}  {r['note']}", flush=True)


if __name__ == "__main__":
    main()
