"""Every benchmark in one command, one table, and the issue's targets.

    python benchmarks/run.py [--quick] [--out benchmarks/results] [--only STEPS]
        [--keep DIR | --from DIR]

Runs, each as a subprocess writing ``--json`` into a temporary directory and
bounded by its own timeout: ``bench_vs_celery.py`` (publish, consume,
latency, start-up beside Celery), ``bench_memory.py`` (worker RSS with ETA
tasks waiting), ``bench_io.py`` on ``eventlet`` and on ``asyncio`` (1,000
tasks sleeping 1 s at ``-c 1000``, on a throwaway Redis), ``bench_speedups.py``
(compiled modules beside their twins), ``bench_canvas.py`` (group and
chord beside Celery), ``bench_startup.py`` (``import``, ``--help``, app
creation and worker start to first task, beside Celery) and ``bench_beat.py``
(beat lateness, CPU and RSS beside Celery beat, issue 14).  A step that fails or times out is reported with the
end of its output, and the others still run.  ``--quick`` passes small
counts to each (the I/O steps are already short and keep the target's size).

Then one table: each row's Celery (or, for speedups, pure-Python twin) and
corekit value, how many times better corekit is, the target from issue 6
where one applies, and whether it is met.  Written to ``--out``:
``latest.json`` (rows, machine, targets, date, steps), ``latest.md`` (the
table) and ``latest.png`` (a chart).  ``--keep DIR`` keeps each step's
``<step>.json`` and ``<step>.log``; ``--from DIR`` renders from such a
directory without running anything.  benchmarks/report.py renders the table
and the chart.
Not a test: unmet targets do not change the exit status; a failed step does.
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
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from report import chart, machine_line, markdown, text_table

HERE = Path(__file__).resolve().parent
Row = dict[str, Any]


@dataclass
class Step:
    name: str
    script: str
    args: list[str]
    quick_args: list[str]
    timeout: float
    quick_timeout: float
    needs_redis: bool = False


STEPS = [
    Step("vs_celery", "bench_vs_celery.py", [],
         ["--tasks", "1000", "--repeat", "1", "--latency-calls", "200", "--timeout", "120"],
         3600, 900),
    Step("memory", "bench_memory.py", [], ["--eta-tasks", "5000", "--timeout", "120"],
         1800, 600),
    Step("io_eventlet", "bench_io.py", ["--pool", "eventlet", "--tasks", "1000", "-c", "1000"],
         [], 300, 300, needs_redis=True),
    Step("io_asyncio", "bench_io.py", ["--pool", "asyncio", "--tasks", "1000", "-c", "1000"],
         [], 300, 300, needs_redis=True),
    Step("speedups", "bench_speedups.py", [], ["--runs", "3"], 300, 120),
    Step("canvas", "bench_canvas.py", [], ["--tasks", "200", "--repeat", "1"], 1200, 300),
    Step("startup", "bench_startup.py", [], ["--runs", "3"], 600, 300),
    Step("beat", "bench_beat.py", [], ["--quick"], 1800, 900),
]


@dataclass
class Target:
    """One target of issue 6: which rows it judges and how."""

    text: str          # as shown in the table
    applies: Callable[[Row], bool]
    check: Callable[[Row], bool | None]


def _ratio_at_least(x: float) -> Callable[[Row], bool | None]:
    return lambda r: None if r.get("ratio") is None else r["ratio"] >= x


def _corekit(op: Callable[[float], bool]) -> Callable[[Row], bool | None]:
    return lambda r: None if r.get("corekit") is None else op(r["corekit"])


TARGETS = [
    Target("≥ 20×", lambda r: r["section"] == "throughput" and r["broker"] == "redis"
           and r["metric"] == "consume", _ratio_at_least(20)),
    Target("≥ 5×", lambda r: r["section"] == "throughput" and r["metric"] == "publish_delay",
           _ratio_at_least(5)),
    Target("≥ 50×", lambda r: r["metric"] == "publish_group_vs_delay", _ratio_at_least(50)),
    Target("≥ 3×", lambda r: r["metric"] == "latency_p50", _ratio_at_least(3)),
    Target("≥ 800/s", lambda r: r["section"] == "io", _corekit(lambda v: v >= 800)),
    Target("≤ 10 MB", lambda r: r["section"] == "memory" and r["metric"] == "rss_growth",
           _corekit(lambda v: v <= 10)),
    Target("≥ 3× twin", lambda r: r["section"] == "speedups", _ratio_at_least(3)),
    Target("≤ 80 ms", lambda r: r["section"] == "startup" and r["metric"] == "help",
           _corekit(lambda v: v <= 80)),
    Target("≤ 60 ms", lambda r: r["section"] == "startup" and r["metric"] == "app",
           _corekit(lambda v: v <= 60)),
    Target("≤ 250 ms", lambda r: r["section"] == "startup" and r["metric"] == "first_task",
           _corekit(lambda v: v <= 250)),
    Target("≤ 100 ms", lambda r: r["section"] == "beat" and r.get("pool") == "per-second"
           and r["metric"] == "grid_lateness_p99", _corekit(lambda v: v <= 100)),
    Target("≥ 5×", lambda r: r["section"] == "beat" and r["metric"] == "cpu",
           _ratio_at_least(5)),
]

TARGET_NOTES = [
    "consume/s on Redis ≥ 20× Celery's (every pool)",
    "publish/s with delay() ≥ 5× Celery's (every broker and pool)",
    "batched group publish ≥ 50× Celery's delay() loop "
    "(corekit publish_group against Celery publish_delay)",
    "p50 round-trip latency ≤ 1/3 of Celery's",
    "eventlet and asyncio at -c 1000 with 1 s sleeps ≥ 800 tasks/s",
    "worker RSS with 100,000 ETA tasks within 10 MB of idle",
    "each compiled module ≥ 3× its pure-Python twin",
    "start-up (issue 13): corekit --help ≤ 80 ms, app creation ≤ 60 ms, "
    "worker start to first task ≤ 0.25 s on SQLite",
    "beat (issue 14): p99 lateness ≤ 100 ms at 1,000 fires/s (against corekit's own "
    "schedule), beat CPU ≤ 1/5 of Celery beat's",
]


# -- running the steps ------------------------------------------------------------

def run_step(step: Step, argv: list[str], timeout: float, log_path: Path) -> tuple[str, float]:
    """Run one benchmark; its output is echoed indented and kept in log_path.
    Returns its status ("ok", "failed (exit N)", "timed out after N s") and seconds."""
    print(f"\n== {step.name}: {' '.join(argv[1:])}", flush=True)
    started = time.monotonic()
    with log_path.open("w") as log:
        proc = subprocess.Popen(argv, cwd=HERE.parent, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)

        def echo() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                log.flush()
                print(f"   | {line}", end="", flush=True)

        reader = threading.Thread(target=echo, daemon=True)
        reader.start()
        try:
            code = proc.wait(timeout)
            status = "ok" if code == 0 else f"failed (exit {code})"
        except subprocess.TimeoutExpired:
            stop(proc)
            status = f"timed out after {timeout:.0f} s"
        except KeyboardInterrupt:
            stop(proc)
            raise
        reader.join(10)
    took = time.monotonic() - started
    print(f"== {step.name}: {status} in {took:.0f} s", flush=True)
    return status, took


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGINT to the benchmark (its ``finally`` blocks stop its workers and
    servers), then SIGKILL to whatever is left of its process group."""
    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_all(steps: list[Step], quick: bool, json_dir: Path) -> list[dict[str, Any]]:
    report = []
    with ExitStack() as stack:
        redis = None
        for step in steps:
            out = json_dir / f"{step.name}.json"
            argv = [sys.executable, str(HERE / step.script), *step.args,
                    *(step.quick_args if quick else []), "--json", str(out)]
            if step.needs_redis:
                if redis is None:
                    try:
                        import servers

                        redis = stack.enter_context(servers.redis_server())
                    except Exception as exc:  # noqa: BLE001 - reported as the step's failure
                        report.append({"step": step.name, "status": f"failed: no Redis: {exc}",
                                       "seconds": 0.0, "tail": ""})
                        continue
                argv += ["--broker", redis.db_url(10 + steps.index(step))]
            log_path = json_dir / f"{step.name}.log"
            status, took = run_step(step, argv, step.quick_timeout if quick else step.timeout,
                                    log_path)
            if status == "ok" and not out.exists():
                status = "failed (wrote no JSON)"
            tail = "" if status == "ok" else "\n".join(
                log_path.read_text(errors="replace").splitlines()[-15:])
            report.append({"step": step.name, "status": status, "seconds": round(took, 1),
                           "cmd": " ".join(argv[1:]), "tail": tail})
    return report


# -- rows, ratios, targets --------------------------------------------------------

def load_rows(json_dir: Path, names: list[str]) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    machine: dict[str, Any] = {}
    for name in names:
        path = json_dir / f"{name}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        for key, value in data.get("machine", {}).items():
            machine.setdefault(key, value)
        for row in data.get("rows", []):
            rows.append({**row, "step": name})
    return rows, machine


def group_vs_delay(rows: list[Row]) -> list[Row]:
    """corekit's batched group publish beside Celery's delay() loop, per broker and pool."""
    by_key = {(r["broker"], r["pool"], r["metric"]): r for r in rows
              if r["section"] == "throughput"}
    out = []
    for (broker, pool, metric), row in by_key.items():
        delay = by_key.get((broker, pool, "publish_delay"))
        if metric != "publish_group" or delay is None or delay.get("celery") is None:
            continue
        out.append({**row, "metric": "publish_group_vs_delay", "celery": delay["celery"]})
    return out


def ratio(row: Row) -> float | None:
    if row["section"] == "speedups":
        kit, twin = row.get("corekit"), row.get("twin")
        return kit / twin if kit and twin else None
    cel, kit = row.get("celery"), row.get("corekit")
    if cel is None or kit is None or cel <= 0 or kit <= 0:
        return None
    return kit / cel if row.get("better", "higher") == "higher" else cel / kit


def judge(rows: list[Row]) -> None:
    for row in rows:
        row["ratio"] = ratio(row)
        compared = (row["section"] in ("io", "memory", "speedups", "beat")
                    or row.get("celery") is not None)
        for target in TARGETS:
            if compared and target.applies(row):
                row["target"], row["met"] = target.text, target.check(row)
                break
        else:
            row["target"], row["met"] = None, None


def machine_info(merged: dict[str, Any]) -> dict[str, Any]:
    info = dict(merged)
    info.setdefault("cpus", os.cpu_count())
    info.setdefault("python", platform.python_version())
    info.setdefault("platform", platform.platform())
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE.parent,
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=HERE.parent, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        if commit:
            info["commit"] = commit + ("+changes" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        pass
    return info


# -- main -------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts for each step")
    parser.add_argument("--out", type=Path, default=HERE / "results",
                        help="where latest.json/.md/.png go (default benchmarks/results)")
    parser.add_argument("--only", default="",
                        help="comma-separated steps to run: " + ",".join(s.name for s in STEPS))
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep each step's <step>.json and <step>.log in DIR "
                             "(default: a temporary directory)")
    parser.add_argument("--from", dest="from_dir", type=Path, metavar="DIR",
                        help="render from the <step>.json files in DIR (see --keep); "
                             "run nothing")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - {s.name for s in STEPS}
    if unknown:
        parser.error(f"unknown step(s): {', '.join(sorted(unknown))}")
    steps = [s for s in STEPS if not names or s.name in names]
    started = time.monotonic()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory(prefix="corekit-bench-run-") as tmp:
        json_dir = args.from_dir or args.keep or Path(tmp)
        json_dir.mkdir(parents=True, exist_ok=True)
        report: list[dict[str, Any]]
        if args.from_dir:
            report = [{"step": s.name, "status": f"from {args.from_dir}", "seconds": 0.0,
                       "tail": ""} for s in steps if (json_dir / f"{s.name}.json").exists()]
        else:
            report = run_all(steps, args.quick, json_dir)
        rows, merged = load_rows(json_dir, [s.name for s in steps])
    rows += group_vs_delay(rows)
    rows.sort(key=order)
    judge(rows)
    machine = machine_info(merged)
    write(args.out, rows, machine, date, args.quick, report)
    print(f"\ncorekit benchmarks, {date}{' (--quick)' if args.quick else ''}")
    print(f"machine: {machine_line(machine)}")
    shown = [r for r in rows if r.get("ratio") is not None or r.get("target")]
    print(text_table(shown))
    if len(shown) < len(rows):
        print(f"({len(rows) - len(shown)} corekit-only rows without a target: "
              f"{args.out / 'latest.md'})")
    failed = [s for s in report if not (s["status"] == "ok" or s["status"].startswith("from"))]
    for s in failed:
        print(f"\nstep {s['step']} {s['status']}; its output ended:\n{s['tail']}")
    met = [r["met"] for r in rows if r.get("target")]
    print(f"\ntargets met: {sum(m is True for m in met)} of {len(met)}; "
          f"steps: {len(report) - len(failed)} of {len(report)} ok; "
          f"took {time.monotonic() - started:.0f} s")
    written = (args.out / n for n in ("latest.json", "latest.md", "latest.png"))
    print(f"wrote {', '.join(str(p) for p in written if p.exists())}")
    return 1 if failed else 0


SECTIONS = ("throughput", "latency", "startup", "io", "memory", "canvas", "beat", "speedups")
BROKERS = ("redis", "amqp", "sqlite")
POOLS = ("solo", "threads", "prefork", "eventlet", "asyncio", "minute", "per-second")
METRICS = ("publish_delay", "publish_group", "publish_group_vs_delay", "consume",
           "latency_p50", "latency_p99", "startup", "python", "import", "help", "app",
           "first_task", "rss_idle", "rss_eta", "rss_growth", "lateness_p50", "lateness_p99",
           "lateness_max", "grid_lateness_p50", "grid_lateness_p99", "cpu", "cpu_per_1k_runs",
           "rss_peak")


def order(row: Row) -> tuple[int, int, int, int]:
    def index(names: tuple[str, ...], value: Any) -> int:
        return next((i for i, n in enumerate(names) if str(value).startswith(n)), len(names))
    return (index(SECTIONS, row["section"]), index(BROKERS, row.get("broker")),
            index(POOLS, row.get("pool")), index(METRICS, row["metric"]))


def write(out: Path, rows: list[Row], machine: dict[str, Any], date: str, quick: bool,
          report: list[dict[str, Any]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = {"date": date, "quick": quick, "machine": machine,
            "targets": TARGET_NOTES, "steps": report, "rows": rows}
    (out / "latest.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    (out / "latest.md").write_text(markdown(rows, machine, date, quick, report,
                                           TARGET_NOTES))
    try:
        chart(rows, machine, date, out / "latest.png")
    except ImportError as exc:
        print(f"no chart: {exc} (pip install -e '.[bench]')")


if __name__ == "__main__":
    sys.exit(main())
