"""The figures of ``bench_beat.py``: what an observer saw (`Arrival`), what one
beat did in one scenario (`Measured`), corekit's own run ids as a check on
them, and the rows, verdicts and table made of them.  Nothing here runs a beat.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TARGET_P99_MS = 100.0
TARGET_CPU_RATIO = 5.0
SCENARIOS = ("minute", "per-second")


@dataclass
class Arrival:
    at: float
    task_id: str
    key: str  # the argsrepr: which entry


@dataclass
class Measured:
    """One system in one scenario."""

    system: str
    scenario: str
    lateness_ms: list[float] = field(default_factory=list)
    #: corekit per-second only: lateness against its own grid (from task ids)
    grid_ms: list[float] = field(default_factory=list)
    fired: int = 0
    expected: int = 0
    missing: int = 0
    duplicates: int = 0
    cpu_s: float = 0.0
    window_s: float = 0.0
    rss_peak_mb: float = 0.0
    #: per-second: messages that arrived inside the window (whatever their run)
    arrived_in_window: int = 0
    load: tuple[float, float] = (0.0, 0.0)
    notes: list[str] = field(default_factory=list)


def read_arrivals(path: Path) -> list[Arrival]:
    out = []
    for line in path.read_text().splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3:
            out.append(Arrival(float(parts[0]), parts[1], parts[2]))
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def stored_bases(url: str) -> dict[str, float]:
    """Each entry's ``changed_at`` (the base of its runs) from corekit's store."""
    from corekit.plugins.redis.schedule_store import RedisScheduleStore

    store = RedisScheduleStore(url)
    try:
        return {s.name: s.changed_at for s in store.load()[1]}
    finally:
        store.close()


def entry_name(prefix: str, key: str) -> str:
    return f"{prefix}{int(key.strip('[]()').rstrip(',')):05d}"


def check_minute_ids(bases: dict[str, float], arrivals: list[Arrival],
                     boundaries: list[float]) -> str:
    """Whether each message's task id is its entry's run at the boundary it was
    counted for: the boundary assignment, checked against corekit's own ids
    (*bases*: each entry's stored base, `stored_bases`)."""
    from corekit.plugins.beat.service import run_task_id

    ids = {run_task_id(name, base, float(b)) for name, base in bases.items() for b in boundaries}
    matched = sum(a.task_id in ids for a in arrivals)
    return f"corekit task ids on their boundary's run: {matched} of {len(arrivals)}"


def grid_lateness(bases: dict[str, float], by_key: dict[str, list[Arrival]], t0: float,
                  t1: float, every: float, late: list[float]) -> str:
    """corekit's lateness against its own grid (base + k x every, *bases* as
    `stored_bases` gives them), each run found by its task id; runs scheduled
    in the window that never arrived."""
    from corekit.plugins.beat.service import run_task_id

    off_grid, scheduled = 0, 0
    for key, got in by_key.items():
        name = entry_name("s", key)
        base = bases[name]
        times = {run_task_id(name, base, base + k * every): base + k * every
                 for k in range(1, math.ceil((t1 + 10 - base) / every) + 1)}
        scheduled += sum(t0 <= t < t1 for t in times.values())
        for a in got:
            at = times.get(a.task_id)
            if at is None:
                off_grid += 1
            elif t0 <= at < t1:
                late.append((a.at - at) * 1000)
    return (f"corekit against its grid: min {min(late):.1f} ms, p50 "
            f"{percentile(late, 50):.1f} ms, p99 {percentile(late, 99):.1f} ms, max "
            f"{max(late):.1f} ms; {len(late)} of "
            f"{scheduled} runs scheduled in the window arrived; {off_grid} ids off the grid"
            if late else "corekit against its grid: no runs")


# -- output ------------------------------------------------------------------------

def rows(results: list[Measured], scenarios: tuple[str, ...] = SCENARIOS
         ) -> list[dict[str, Any]]:
    out = []
    for scenario in scenarios:
        per = {m.system: m for m in results if m.scenario == scenario}
        if "corekit" not in per:
            continue
        cel, kit = per.get("Celery"), per["corekit"]
        note = "; ".join(f"{m.system}: runs fired {m.fired}/{m.expected}, missing {m.missing}, "
                         f"duplicates {m.duplicates}, load {m.load[0]:.2f}->{m.load[1]:.2f}"
                         for m in (cel, kit) if m is not None)
        note = "; ".join([note, *kit.notes])
        values = {
            "lateness_p50": ("ms", lambda m: percentile(m.lateness_ms, 50)),
            "lateness_p99": ("ms", lambda m: percentile(m.lateness_ms, 99)),
            "lateness_max": ("ms", lambda m: max(m.lateness_ms)),
            "grid_lateness_p50": ("ms", lambda m: percentile(m.grid_ms, 50)),
            "grid_lateness_p99": ("ms", lambda m: percentile(m.grid_ms, 99)),
            "cpu": ("s", lambda m: m.cpu_s),
            "cpu_per_1k_runs": ("s", lambda m: 1000 * m.cpu_s / m.fired),
            "rss_peak": ("MB", lambda m: m.rss_peak_mb),
        }
        for metric, (unit, get) in values.items():
            def value(m: Measured | None) -> float | None:
                if m is None or (metric.startswith("lateness") and not m.lateness_ms) or (
                        metric.startswith("grid") and not m.grid_ms) or (
                        metric == "cpu_per_1k_runs" and not m.fired):
                    return None
                return round(get(m), 3)
            row = {"section": "beat", "broker": "redis", "pool": scenario, "metric": metric,
                   "unit": unit, "better": "lower", "celery": value(cel),
                   "corekit": value(kit), "note": note}
            if row["corekit"] is not None:
                out.append(row)
    return out


def verdicts(table_rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in table_rows:
        if r["pool"] == "per-second" and r["metric"] in ("lateness_p99", "grid_lateness_p99"):
            ok = r["corekit"] <= TARGET_P99_MS
            how = ("against its own schedule (the target's measure)" if r["metric"].startswith(
                "grid") else "after its first run (the definition shared with Celery)")
            out.append(f"p99 lateness <= {TARGET_P99_MS:.0f} ms at per-second, {how}: "
                       f"{r['corekit']:.1f} ms: {'met' if ok else 'NOT met'}")
        if r["metric"] in ("cpu", "cpu_per_1k_runs") and r["celery"] is not None:
            ratio = r["celery"] / r["corekit"] if r["corekit"] else math.inf
            out.append(f"beat CPU <= 1/{TARGET_CPU_RATIO:.0f} of Celery's ({r['pool']}, "
                       f"{'per run fired' if r['metric'] != 'cpu' else 'in the window'}): "
                       f"Celery/corekit = {ratio:.1f}x: "
                       f"{'met' if ratio >= TARGET_CPU_RATIO else 'NOT met'}")
    return out


def table(table_rows: list[dict[str, Any]], results: list[Measured]) -> str:
    w = max([11, *(len(r["pool"]) for r in table_rows)])
    lines = [f"{'scenario':<{w}} {'metric':<18} {'unit':<5}{'Celery':>11}{'corekit':>11}"
             f"{'Celery/corekit':>16}"]
    for r in table_rows:
        cel, kit = r["celery"], r["corekit"]
        ratio = f"{cel / kit:.1f}x" if cel is not None and cel > 0 and kit and kit > 0 else "—"
        lines.append(f"{r['pool']:<{w}} {r['metric']:<18} {r['unit']:<5}"
                     f"{'—' if cel is None else f'{cel:,.2f}':>11}"
                     f"{'—' if kit is None else f'{kit:,.2f}':>11}{ratio:>16}")
    for m in results:
        lines.append(f"{m.scenario} {m.system}: runs fired {m.fired:,}/{m.expected:,}, "
                     f"missing {m.missing:,}, duplicates {m.duplicates:,}; CPU over "
                     f"{m.window_s:.0f} s; load average {m.load[0]:.2f} -> {m.load[1]:.2f}"
                     + "".join(f"\n  {n}" for n in m.notes))
    return "\n".join(lines)
