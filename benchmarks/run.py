"""Every benchmark in one command, one table, and the issue's targets.

    python benchmarks/run.py [--quick] [--out benchmarks/results] [--only STEPS]
        [--keep DIR | --from DIR]

Runs, each as a subprocess writing ``--json`` into a temporary directory and
bounded by its own timeout: ``bench_vs_celery.py`` (publish, consume,
latency, start-up beside Celery), ``bench_memory.py`` (worker RSS with ETA
tasks waiting), ``bench_io.py`` on ``eventlet`` and on ``asyncio`` (1,000
tasks sleeping 1 s at ``-c 1000``, on a throwaway Redis), ``bench_speedups.py``
(compiled modules beside their twins), ``bench_canvas.py`` (group and
chord beside Celery) and ``bench_startup.py`` (``import``, ``--help``, app
creation and worker start to first task, beside Celery).  A step that fails or times out is reported with the
end of its output, and the others still run.  ``--quick`` passes small
counts to each (the I/O steps are already short and keep the target's size).

Then one table: each row's Celery (or, for speedups, pure-Python twin) and
corekit value, how many times better corekit is, the target from issue 6
where one applies, and whether it is met.  Written to ``--out``:
``latest.json`` (rows, machine, targets, date, steps), ``latest.md`` (the
table) and ``latest.png`` (a chart).  ``--keep DIR`` keeps each step's
``<step>.json`` and ``<step>.log``; ``--from DIR`` renders from such a
directory without running anything.
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
import textwrap
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

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
        compared = row["section"] in ("io", "memory", "speedups") or row.get("celery") is not None
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


def machine_line(machine: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in machine.items())


# -- the table --------------------------------------------------------------------

def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 or value == 0 else f"{value:.3g}"


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}×" if value >= 100 else f"{value:.1f}×"


def met_text(met: bool | None, target: str | None) -> str:
    if target is None:
        return ""
    return "—" if met is None else ("yes" if met else "NO")


HEADER = ["section", "broker/pool", "metric", "unit", "Celery", "corekit", "× better",
          "target", "met"]


def cells(row: Row) -> list[str]:
    where = "/".join(p for p in (row.get("broker"), row.get("pool")) if p) or "—"
    base = fmt(row.get("celery"))
    if row["section"] == "speedups":
        base = f"{fmt(row.get('twin'))} (twin)"
    return [row["section"], where, row["metric"], row.get("unit", ""), base,
            fmt(row.get("corekit")), fmt_ratio(row.get("ratio")), row.get("target") or "",
            met_text(row.get("met"), row.get("target"))]


def text_table(rows: list[Row]) -> str:
    grid = [HEADER] + [cells(r) for r in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(HEADER))]
    right = {4, 5, 6}
    out = []
    for n, line in enumerate(grid):
        out.append("  ".join(c.rjust(w) if i in right else c.ljust(w)
                             for i, (c, w) in enumerate(zip(line, widths))).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown(rows: list[Row], machine: dict[str, Any], date: str, quick: bool,
             steps: list[dict[str, Any]]) -> str:
    lines = [f"# corekit benchmarks, {date}{' (--quick)' if quick else ''}", "",
             f"Machine: {machine_line(machine)}", "",
             "| " + " | ".join(HEADER) + " |",
             "|" + "|".join("---:" if i in (4, 5, 6) else "---" for i in range(len(HEADER)))
             + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(r)) + " |" for r in rows]
    lines += ["", "publish_group_vs_delay: corekit's `group(...).apply_async()` (one batch) "
              "against Celery's `delay()` loop.", "", "Targets (issue 6):", ""]
    lines += [f"- {t}" for t in TARGET_NOTES]
    notes = [f"- {r['section']} {cells(r)[1]} {r['metric']}: {r['note']}"
             for r in rows if r.get("note")]
    if notes:
        lines += ["", "Notes:", ""] + notes
    lines += ["", "Steps:", ""] + [f"- {s['step']}: {s['status']} ({s['seconds']:.0f} s)"
                                   for s in steps]
    return "\n".join(lines) + "\n"


# -- the chart --------------------------------------------------------------------

def chart(rows: list[Row], machine: dict[str, Any], date: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    versus = [r for r in rows if r["section"] not in ("speedups", "io")
              and r.get("ratio") is not None]
    speed = [r for r in rows if r["section"] == "speedups" and r.get("ratio") is not None]
    io = [r for r in rows if r["section"] == "io" and r.get("corekit") is not None]
    memory = [r for r in rows if r["section"] == "memory" and r["metric"] != "rss_growth"]
    top = max(len(versus), 1)
    fig = plt.figure(figsize=(10, 1.2 + 0.22 * top + 3.0), dpi=100, layout="constrained")
    grid = fig.add_gridspec(2, 3, height_ratios=[0.6 + 0.22 * top, 3.0])
    summary = "\n".join(textwrap.wrap(machine_summary(machine), 120))
    fig.suptitle(f"corekit benchmarks, {date}\n{summary}", fontsize=9)

    ax = fig.add_subplot(grid[0, :])
    labels = [f"{r['broker']}/{r['pool']} {r['metric']}" for r in versus]
    values = [r["ratio"] for r in versus]
    colours = [colour(r) for r in versus]
    ypos = list(range(len(versus)))[::-1]
    ax.barh(ypos, values, color=colours, height=0.7)
    for y, r in zip(ypos, versus):
        goal = target_ratio(r)
        if goal is not None:
            ax.plot([goal, goal], [y - 0.45, y + 0.45], color="black", linewidth=2)
        ax.text(r["ratio"], y, f" {fmt_ratio(r['ratio'])}", va="center", fontsize=7)
    ax.set_yticks(ypos, labels, fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    ax.axvline(1, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlabel("times better than Celery (log; black tick = target, "
                  "green met, red missed, blue no target)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    if values:
        ax.set_xlim(min(0.5, min(values) / 2), max(values + [50]) * 3)

    ax = fig.add_subplot(grid[1, 0])
    if speed:
        names = [r["metric"].replace(": ", ":\n") for r in speed][::-1]
        ax.barh(range(len(speed)), [r["ratio"] for r in speed][::-1],
                color=[colour(r) for r in speed][::-1])
        ax.axvline(3, color="black", linewidth=1.5)
        ax.set_yticks(range(len(speed)), names, fontsize=6.5)
    ax.set_title("compiled / pure-Python twin", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)

    ax = fig.add_subplot(grid[1, 1])
    if io:
        ax.bar([r["pool"] for r in io], [r["corekit"] for r in io],
               color=[colour(r) for r in io])
        ax.axhline(800, color="black", linewidth=1.5)
        ax.set_ylim(0, max([800] + [r["corekit"] for r in io]) * 1.15)
    ax.set_title("I/O: tasks/s, 1 s sleeps, -c 1000\n(line: target 800)", fontsize=8)
    ax.tick_params(labelsize=7)

    ax = fig.add_subplot(grid[1, 2])
    memory_panel(ax, memory)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def memory_panel(ax: Any, memory: list[Row]) -> None:
    bars: list[tuple[str, float, float]] = []
    for idle in (r for r in memory if r["metric"] == "rss_idle"):
        eta = next((r for r in memory if r["broker"] == idle["broker"]
                    and r["metric"].startswith("rss_eta")), None)
        if eta is None:
            continue
        for who, key in (("Celery", "celery"), ("corekit", "corekit")):
            if idle.get(key) is not None and eta.get(key) is not None:
                bars.append((f"{who}\n{idle['broker']}", idle[key], eta[key]))
    x = range(len(bars))
    ax.bar([i - 0.2 for i in x], [b[1] for b in bars], width=0.4, label="idle",
           color="#9ecae1")
    ax.bar([i + 0.2 for i in x], [b[2] for b in bars], width=0.4, label="ETA tasks waiting",
           color="#3182bd")
    ax.set_xticks(list(x), [b[0] for b in bars], fontsize=6.5)
    ax.set_title("worker RSS, MB", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    if bars:
        ax.legend(fontsize=6.5)


def target_ratio(row: Row) -> float | None:
    text = row.get("target") or ""
    if "×" in text and text.startswith("≥"):
        return float(text[1:].split("×")[0])
    return None


def colour(row: Row) -> str:
    if row.get("met") is None:
        return "#6baed6"
    return "#31a354" if row["met"] else "#de2d26"


def machine_summary(machine: dict[str, Any]) -> str:
    keys = ("cpus", "cpu", "python", "celery", "redis-server", "rabbitmq", "speedups",
            "commit")
    return ", ".join(f"{k} {machine[k]}" for k in keys if k in machine)


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


SECTIONS = ("throughput", "latency", "startup", "io", "memory", "canvas", "speedups")
BROKERS = ("redis", "amqp", "sqlite")
POOLS = ("solo", "threads", "prefork", "eventlet", "asyncio")
METRICS = ("publish_delay", "publish_group", "publish_group_vs_delay", "consume",
           "latency_p50", "latency_p99", "startup", "python", "import", "help", "app",
           "first_task", "rss_idle", "rss_eta", "rss_growth")


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
    (out / "latest.md").write_text(markdown(rows, machine, date, quick, report))
    try:
        chart(rows, machine, date, out / "latest.png")
    except ImportError as exc:
        print(f"no chart: {exc} (pip install -e '.[bench]')")


if __name__ == "__main__":
    sys.exit(main())
