"""How ``benchmarks/run.py`` shows its rows: the text table it prints, the
Markdown table of ``latest.md`` and the chart of ``latest.png``.  A row is a
dict as run.py builds it (section, broker, pool, metric, unit, celery or
twin, corekit, ratio, target, met, note); nothing here runs or judges a
benchmark.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

Row = dict[str, Any]


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
             steps: list[dict[str, Any]], target_notes: list[str]) -> str:
    lines = [f"# corekit benchmarks, {date}{' (--quick)' if quick else ''}", "",
             f"Machine: {machine_line(machine)}", "",
             "| " + " | ".join(HEADER) + " |",
             "|" + "|".join("---:" if i in (4, 5, 6) else "---" for i in range(len(HEADER)))
             + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(r)) + " |" for r in rows]
    lines += ["", "publish_group_vs_delay: corekit's `group(...).apply_async()` (one batch) "
              "against Celery's `delay()` loop.", "", "Targets (issue 6):", ""]
    lines += [f"- {t}" for t in target_notes]
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
