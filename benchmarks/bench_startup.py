"""Start-up costs of corekit beside Celery's, in one run: what a user waits
for before anything happens.

    python benchmarks/bench_startup.py [--runs 9] [--pool solo] [--celery-broker URL]
        [--json PATH]

Each figure is the median wall time of ``--runs`` fresh interpreter
subprocesses (after one warm-up run each, which writes the bytecode):

* ``python``: ``python -c pass``, the interpreter's own floor on this machine,
  for reading the others;
* ``import``: ``import corekit`` / ``import celery``;
* ``help``: ``python -m corekit --help`` / ``python -m celery --help``;
* ``app``: import, create an app with a broker URL, define one task, finalize
  it (``app.tasks``);
* ``first_task``: from spawning a real worker (``worker -P solo -c 1``, log
  level warning) to the stored result of one task published before the
  spawn.  corekit runs on SQLite (broker and results in one fresh file per
  run); Celery has no SQLite transport, so it runs on Redis (a throwaway
  ``redis-server`` from ``benchmarks/servers.py`` unless ``--celery-broker``
  names one; broker and results in one database, flushed per run), with
  ``--without-mingle --without-gossip --without-heartbeat``, its quickest
  start.  The result is polled every 2 ms in both.

Bytecode: the suite's environment may set ``PYTHONDONTWRITEBYTECODE``; a user's
install has ``.pyc`` files, so every subprocess here runs with
``PYTHONPYCACHEPREFIX`` pointing into a temporary directory (nothing is
written into the source tree) and the warm-up run fills it.

Issue 13's targets: ``corekit --help`` <= 80 ms, app creation <= 60 ms,
worker start to first task <= 0.25 s on SQLite.  Not a test: nothing asserts.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
POLL = 0.002
TARGETS = {"help": 0.080, "app": 0.060, "first_task": 0.25}

#: The app of ``app`` and ``first_task``; broker and backend are expressions.
APP_CODE = {
    "corekit": """import os
from corekit import Corekit
app = Corekit("proj", broker={broker}, backend={backend})
@app.task
def add(x, y):
    return x + y
app.tasks
""",
    "celery": """import os
from celery import Celery
app = Celery("proj", broker={broker}, backend={backend})
@app.task
def add(x, y):
    return x + y
app.tasks
""",
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def clean_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def median_time(run: Callable[[], float], runs: int) -> float:
    """Median of *runs* calls after one warm-up call."""
    run()
    return statistics.median(run() for _ in range(runs))


def timed_command(cmd: list[str], env: dict[str, str], cwd: Path) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        took = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
        return took
    return run


class FirstTask:
    """One system's worker-start-to-first-result measurement."""

    def __init__(self, system: str, workdir: Path, env: dict[str, str], pool: str,
                 urls: Callable[[int], tuple[str, str]], prepare: Callable[[str], None]) -> None:
        self.system, self.workdir, self.env, self.pool = system, workdir, env, pool
        self.urls, self.prepare = urls, prepare
        self.count = 0
        (workdir / "proj.py").write_text(APP_CODE[system].format(
            broker="os.environ['BENCH_BROKER']", backend="os.environ['BENCH_BACKEND']"))

    def worker_cmd(self) -> list[str]:
        if self.system == "celery":
            return [sys.executable, "-m", "celery", "-A", "proj", "worker", "-P", self.pool,
                    "-c", "1", "-l", "warning", "--without-mingle", "--without-gossip",
                    "--without-heartbeat"]
        return [sys.executable, "-m", "corekit", "-A", "proj", "worker", "-P", self.pool,
                "-c", "1", "-l", "warning", "--no-banner"]

    def __call__(self) -> float:
        self.count += 1
        broker, backend = self.urls(self.count)
        self.prepare(broker)
        env = {**self.env, "BENCH_BROKER": broker, "BENCH_BACKEND": backend}
        result = self.publish(broker, backend)
        log_path = self.workdir / f"worker-{self.count}.log"
        with log_path.open("wb") as out:
            started = time.perf_counter()
            proc = subprocess.Popen(self.worker_cmd(), cwd=self.workdir, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while not result.ready():
                if proc.poll() is not None:
                    raise RuntimeError(f"{self.system} worker exited {proc.returncode}:\n"
                                       f"{log_path.read_text(errors='replace')[-2000:]}")
                if time.perf_counter() - started > 60:
                    raise RuntimeError(f"{self.system} worker ran no task in 60 s")
                time.sleep(POLL)
            took = time.perf_counter() - started
            if result.get(timeout=5) != 5:
                raise RuntimeError(f"{self.system}: wrong result {result.get(timeout=5)!r}")
            return took
        finally:
            stop(proc)

    def publish(self, broker: str, backend: str) -> Any:
        if self.system == "celery":
            from celery import Celery
            app: Any = Celery("proj", broker=broker, backend=backend)
        else:
            from corekit import Corekit
            app = Corekit("proj", broker=broker, backend=backend)
        return app.task(name="proj.add")(_add).delay(2, 3)


def _add(x: int, y: int) -> int:
    return x + y


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def measure(args: argparse.Namespace, workdir: Path, celery_broker: str) -> list[dict[str, Any]]:
    env = clean_env(workdir / "pycache")
    py = [sys.executable]
    sqlite = f"sqlite://{workdir}/app.sqlite3"
    cases: list[tuple[str, str, Callable[[], float]]] = [
        ("python", "python", timed_command([*py, "-c", "pass"], env, workdir)),
        ("import", "corekit", timed_command([*py, "-c", "import corekit"], env, workdir)),
        ("import", "celery", timed_command([*py, "-c", "import celery"], env, workdir)),
        ("help", "corekit", timed_command([*py, "-m", "corekit", "--help"], env, workdir)),
        ("help", "celery", timed_command([*py, "-m", "celery", "--help"], env, workdir)),
        ("app", "corekit", timed_command([*py, "-c", APP_CODE["corekit"].format(
            broker=repr(sqlite), backend=repr(sqlite))], env, workdir)),
        ("app", "celery", timed_command([*py, "-c", APP_CODE["celery"].format(
            broker=repr(celery_broker), backend=repr(celery_broker))], env, workdir)),
    ]
    kit_dir, cel_dir = workdir / "worker-corekit", workdir / "worker-celery"
    kit_dir.mkdir()
    cel_dir.mkdir()
    cases.append(("first_task", "corekit", FirstTask(
        "corekit", kit_dir, env, args.pool,
        lambda n: (f"sqlite://{kit_dir}/run{n}.sqlite3",) * 2, lambda url: None)))
    cases.append(("first_task", "celery", FirstTask(
        "celery", cel_dir, env, args.pool, lambda n: (celery_broker, celery_broker),
        flush_redis)))
    figures: dict[tuple[str, str], float] = {}
    for metric, system, run in cases:
        figures[metric, system] = median_time(run, args.runs)
        log(f"{metric:>10} {system:<8} {figures[metric, system] * 1000:8.1f} ms")
    return rows(figures, args)


def rows(figures: dict[tuple[str, str], float], args: argparse.Namespace) -> list[dict[str, Any]]:
    out = []
    for metric in ("python", "import", "help", "app", "first_task"):
        kit = figures.get((metric, "corekit"), figures.get((metric, "python")))
        cel = figures.get((metric, "celery"))
        row: dict[str, Any] = {"section": "startup", "broker": "sqlite" if metric == "first_task"
                               else None, "pool": args.pool if metric == "first_task" else None,
                               "metric": metric, "unit": "ms", "better": "lower",
                               "corekit": round(kit * 1000, 1),
                               "celery": None if cel is None else round(cel * 1000, 1)}
        if metric == "first_task":
            row["note"] = "Celery on Redis (it has no SQLite transport)"
        if metric in TARGETS:
            row["target_ms"] = TARGETS[metric] * 1000
        out.append(row)
    return out


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'metric':<12}{'Celery ms':>12}{'corekit ms':>12}{'x better':>10}  target"]
    for r in rows:
        cel, kit = r["celery"], r["corekit"]
        ratio = f"{cel / kit:.1f}x" if cel and kit else "-"
        goal = r.get("target_ms")
        judged = "" if goal is None else f"<= {goal:.0f} ms: {'yes' if kit <= goal else 'NO'}"
        lines.append(f"{r['metric']:<12}{'-' if cel is None else f'{cel:.1f}':>12}"
                     f"{kit:>12.1f}{ratio:>10}  {judged}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="runs per figure (median)")
    parser.add_argument("--pool", default="solo", help="worker pool for first_task")
    parser.add_argument("--celery-broker", help="Redis URL for Celery (default: a throwaway "
                        "redis-server; its database is flushed before each run)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows here")
    args = parser.parse_args()
    with ExitStack() as stack:
        machine: dict[str, Any] = {"cpus": os.cpu_count(), "python": platform.python_version()}
        broker = args.celery_broker
        if broker is None:
            sys.path.insert(0, str(HERE))
            import servers

            redis = stack.enter_context(servers.redis_server())
            broker = redis.db_url(5)
            machine["redis-server"] = redis.version
        import celery

        machine["celery"] = celery.__version__
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-startup-")))
        result = measure(args, workdir, broker)
    print(textwrap.dedent(f"""
        start-up, median of {args.runs} runs (machine: {machine})"""))
    print(table(result))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"machine": machine, "rows": result}, out, indent=1)


if __name__ == "__main__":
    main()
