"""corekit's ``django-db`` schedule store beside django-celery-beat's
``DatabaseScheduler``: periodic tasks as Django rows, fired by each
system's beat, same broker, same run.

    python benchmarks/bench_django_beat.py [--quick] [--seconds 30]
        [--second-entries 200,1000] [--every 1] [--changes 10]
        [--change-entries 100] [--scenarios per-second,change]
        [--systems corekit,Celery] [--keep DIR] [--json PATH]

Everything but the schedule's home is ``bench_beat.py``'s: a throwaway
``redis-server`` on loopback is the broker of both (Celery on database 1,
corekit on database 3), each beat is a real process with an observer
process beside it that timestamps every message as it lands on the broker,
and the systems take turns.  Here each system is a Django project of its
own (``django_beat_sides.py``): its SQLite database (WAL, ``IMMEDIATE``
transactions) created fresh for each beat, its periodic tasks written as
``PeriodicTask`` rows through its own models before the beat starts:

    corekit -A djbeatk beat -l warning       (COREKIT_BEAT_STORE_URL = "django-db")
    celery -A djbeatc beat -l warning -S django_celery_beat.schedulers:DatabaseScheduler

Scenarios:

* ``per-second-N``, for each N of ``--second-entries``: N interval tasks of
  ``--every`` seconds, measured for ``--seconds`` after ``--warmup``
  seconds exactly as ``bench_beat.py``'s ``per-second`` (lateness of the
  k-th run = arrival_k - (first arrival + k x every); corekit's also
  against its own grid, found by task id; missing runs, duplicate task
  ids, beat CPU over the window and per 1,000 runs, peak RSS), plus the
  messages that arrived per second of the window (`fires_per_s`).
* ``change``: ``--change-entries`` tasks every hour (none due while it is
  measured) are loaded and the beat idle; then ``--changes`` times, a helper
  process adds a periodic task with ``create()`` (its ``save()``, what the
  admin does) on a ``ClockedSchedule`` at that moment, so it is due at once,
  and the time from ``save()`` returning to its message on the broker is
  measured; the next change follows 0.5-5.5 s (uniform, `CHANGE_GAP`) after
  it arrived, so that it falls anywhere in an idle tick of either beat.
  Each system runs with its defaults: corekit's beat reads the store's
  change cursor every 0.5 s (``WAIT_POLL``); django-celery-beat checks
  ``PeriodicTasks.last_update`` once per scheduler tick, and an idle tick
  sleeps up to ``beat_max_loop_interval``, 5 s for the DatabaseScheduler
  when it is not set.  Beat CPU is over all the changes, per minute.

A side that fires nothing stops the run with its beat's log.  Not a test:
nothing asserts a figure.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from beat_figures import Measured, percentile, read_arrivals, rows, table  # noqa: E402
from beat_sides import cpu_seconds, log, stop_process  # noqa: E402
from bench_beat import GRACE, Run, chosen, machine_info, measure_per_second  # noqa: E402
from django_beat_sides import CHANGE_EVERY, DjangoSide  # noqa: E402
from servers import redis_server  # noqa: E402

SCENARIOS = ("per-second", "change")
#: seconds a change may take to reach the broker before it counts as missing
CHANGE_TIMEOUT = 30.0
#: args of the tasks the change scenario adds: CHANGE_BASE + k
CHANGE_BASE = 90000
#: seconds from a change's arrival to the next change (uniform): at least a whole
#: idle tick of django-celery-beat's (5 s), whose ticks are in step with its last
#: send, so each save falls anywhere in a tick; a gap shorter than the tick
#: would make its waits look longer than they are
CHANGE_GAP = (0.5, 5.5)


def index_of(key: str) -> int | None:
    """The entry number in an argsrepr (``[5]``, ``(5,)``)."""
    try:
        return int(key.strip("[]()").rstrip(","))
    except ValueError:
        return None


def fired_check(side: DjangoSide, run: Run, m: Measured) -> None:
    """A side that fired nothing is broken, not slow: stop with its log."""
    if m.fired == 0:
        raise RuntimeError(f"{side.name} {m.scenario}: no run reached the broker; its beat "
                           f"log ({run.log_path}) ends:\n{run.log_tail()}")


def measure_change(side: DjangoSide, entries: int, changes: int
                   ) -> tuple[Measured, list[dict[str, float]]]:
    m = Measured(side.name, "change", expected=changes)
    samples: list[dict[str, float]] = []
    with Run(side, "change", entries, CHANGE_EVERY) as run:
        run.wait_loaded()
        changer = side.start_changer()
        assert changer.stdin is not None and changer.stdout is not None
        try:
            if changer.stdout.readline().strip() != "ready":
                raise RuntimeError(f"{side.name} change helper did not start")
            log(f"{side.name} change: loaded {entries} tasks; {changes} changes")
            t0, cpu0, load0 = time.time(), cpu_seconds(run.beat.pid), os.getloadavg()[0]
            for n in range(changes):
                k = CHANGE_BASE + n
                changer.stdin.write(f"add {k}\n")
                changer.stdin.flush()
                before, after = map(float, changer.stdout.readline().split())
                arrived = None
                while arrived is None and time.time() < after + CHANGE_TIMEOUT:
                    run.check_alive()
                    run.sample_rss()
                    arrived = next((a.at for a in read_arrivals(run.out)
                                    if index_of(a.key) == k), None)
                    time.sleep(0.01)
                if arrived is None:
                    m.missing += 1
                    log(f"{side.name} change {n}: nothing on the broker "
                        f"{CHANGE_TIMEOUT:.0f} s after save()")
                    continue
                m.fired += 1
                m.lateness_ms.append((arrived - after) * 1000)
                samples.append({"save_started": before, "save_returned": after,
                                "arrived": arrived})
                time.sleep(random.uniform(*CHANGE_GAP))
            run.finish(m, cpu0, t0)
            m.load = (load0, os.getloadavg()[0])
            time.sleep(GRACE)  # a second copy of the last change would land by now
        finally:
            changer.stdin.close()
            stop_process(changer)  # type: ignore[arg-type]
        arrivals = read_arrivals(run.out)
    added = [a for a in arrivals if (index_of(a.key) or 0) >= CHANGE_BASE]
    m.duplicates = len(added) - len({a.key for a in added})
    others = len(arrivals) - len(added)
    if others:
        m.notes.append(f"{others} messages of the hourly tasks arrived (none was due)")
    fired_check(side, run, m)
    return m, samples


def per_second(side: DjangoSide, entries: int, seconds: float, every: float, warmup: float
               ) -> Measured:
    label = f"per-second-{entries}"
    m = measure_per_second(side, entries, seconds, every, warmup, label=label)
    m.notes.append(f"{side.name}: {m.arrived_in_window / seconds:,.0f} messages/s arrived "
                   f"in the window (of {entries / every:,.0f} due)")
    if m.fired == 0:
        beat_log = side.workdir / f"beat-{side.module}-{label}.log"
        tail = "\n".join(beat_log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{side.name} {label}: no run reached the broker; its beat log "
                           f"({beat_log}) ends:\n{tail}")
    return m


def change_rows(results: list[Measured]) -> list[dict[str, Any]]:
    per = {m.system: m for m in results if m.scenario == "change"}
    if "corekit" not in per:
        return []
    cel, kit = per.get("Celery"), per["corekit"]
    note = "; ".join(f"{m.system}: changes seen {m.fired}/{m.expected}, missing {m.missing}, "
                     f"duplicates {m.duplicates}, load {m.load[0]:.2f}->{m.load[1]:.2f}"
                     for m in (cel, kit) if m is not None)
    values = {
        "save_to_run_p50": ("ms", lambda m: percentile(m.lateness_ms, 50)),
        "save_to_run_max": ("ms", lambda m: max(m.lateness_ms)),
        "save_to_run_min": ("ms", lambda m: min(m.lateness_ms)),
        # the windows differ (Celery waits longer for each change): CPU per minute of it
        "cpu_per_min": ("s", lambda m: 60 * m.cpu_s / m.window_s),
        "rss_peak": ("MB", lambda m: m.rss_peak_mb),
    }
    out = []
    for metric, (unit, get) in values.items():
        def value(m: Measured | None) -> float | None:
            if m is None or (metric.startswith("save") and not m.lateness_ms):
                return None
            return round(get(m), 3)
        out.append({"section": "django-beat", "broker": "redis", "pool": "change",
                    "metric": metric, "unit": unit, "better": "lower", "celery": value(cel),
                    "corekit": value(kit), "note": note})
    return out


def per_second_rows(results: list[Measured], labels: list[str], seconds: float
                    ) -> list[dict[str, Any]]:
    out = []
    for r in rows(results, tuple(labels)):
        out.append({**r, "section": "django-beat"})
        if r["metric"] == "lateness_max":  # then the rate, beside the lateness
            per = {m.system: m for m in results if m.scenario == r["pool"]}
            out.append({**r, "metric": "fires_per_s", "unit": "/s", "better": "higher",
                        **{k: round(per[s].arrived_in_window / seconds, 1) if s in per
                           else None
                           for k, s in (("celery", "Celery"), ("corekit", "corekit"))}})
    return out


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {"django": version("django"), "django-celery-beat": version("django-celery-beat")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="--seconds 10 --changes 5 (unless given)")
    parser.add_argument("--seconds", type=float, default=None, help="per-second window (30)")
    parser.add_argument("--warmup", type=float, default=5.0, help="per-second warm-up seconds")
    parser.add_argument("--second-entries", default="200,1000",
                        help="per-second: entry counts, one scenario each (200,1000)")
    parser.add_argument("--every", type=int, default=1, help="per-second interval (whole s)")
    parser.add_argument("--changes", type=int, default=None, help="change: how many (10)")
    parser.add_argument("--change-entries", type=int, default=100,
                        help="change: hourly tasks in the table (100)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--systems", default="corekit,Celery",
                        help="which beats to run (default both: corekit,Celery)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the projects, databases, beat logs and arrival files in DIR")
    parser.add_argument("--json", metavar="PATH", help="write the figures here")
    args = parser.parse_args()
    seconds = args.seconds or (10.0 if args.quick else 30.0)
    changes = args.changes or (5 if args.quick else 10)
    counts = [int(n) for n in args.second_entries.split(",") if n.strip()]
    scenarios, systems = chosen(parser, args, SCENARIOS)
    started = time.monotonic()
    results: list[Measured] = []
    samples: dict[str, list[dict[str, float]]] = {}
    plan = [(f"per-second-{n}", n) for n in counts] if "per-second" in scenarios else []
    if "change" in scenarios:
        plan.append(("change", args.change_entries))
    with tempfile.TemporaryDirectory(prefix="corekit-bench-django-beat-") as tmp, \
            ExitStack() as stack:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        redis = stack.enter_context(redis_server())
        machine = {**machine_info(redis), **versions()}
        sides = [DjangoSide(name, workdir, redis.db_url(3 if name == "corekit" else 1))
                 for name in ("corekit", "Celery") if name in systems]
        for n, (scenario, entries) in enumerate(plan):
            for side in sides if n % 2 == 0 else sides[::-1]:
                log(f"{scenario}: {side.name} (load average {os.getloadavg()[0]:.2f})")
                if scenario == "change":
                    got, samples[side.name] = measure_change(side, entries, changes)
                else:
                    got = per_second(side, entries, seconds, args.every, args.warmup)
                results.append(got)
    labels = [s for s, _ in plan if s != "change"]
    out_rows = per_second_rows(results, labels, seconds) + change_rows(results)
    print(f"corekit's django-db schedule store beside django-celery-beat's DatabaseScheduler "
          f"on Redis, SQLite databases: per-second-N = N interval tasks every {args.every} s "
          f"for {seconds:g} s after {args.warmup:g} s (lateness = arrival_k - (first arrival "
          f"+ k x every)); change = a task due at once added with save() while the beat idles "
          f"over {args.change_entries} hourly tasks, {changes} times, save() -> message on "
          f"the broker (Celery: DatabaseScheduler default max interval 5 s; corekit: "
          f"cursor read every 0.5 s)")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()))
    print(table(out_rows, results))
    data = {"machine": machine, "rows": out_rows, "change_samples": samples,
            "settings": {"seconds": seconds, "warmup": args.warmup, "second_entries": counts,
                         "every": args.every, "changes": changes,
                         "change_entries": args.change_entries, "scenarios": scenarios}}
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    log(f"took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
