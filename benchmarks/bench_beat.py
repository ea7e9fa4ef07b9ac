"""corekit beat beside Celery beat, same schedule, same broker, same run
(issue 14): how late each run lands on the broker, and what the beat
process costs in CPU and memory.

    python benchmarks/bench_beat.py [--quick] [--minutes 2] [--seconds 30]
        [--minute-entries 10000] [--second-entries 1000] [--every 1]
        [--scenarios minute,per-second] [--systems corekit,Celery] [--keep DIR]
        [--json PATH] [--out DIR]

A throwaway ``redis-server`` is started on loopback (``benchmarks/servers.py``)
and is the broker of both: Celery on database 1, corekit on database 3
(corekit's schedule store is in the broker, its default).  Each beat is a
real process, ``corekit -A beatk beat -l warning`` and ``celery -A beatc
beat -l warning -s FILE`` (Celery's default PersistentScheduler, its file in
a temporary directory), with the same ``beat_schedule``; no worker runs.
Beside each beat an observer process (``beat_sides.py``) timestamps every
message as it arrives on the broker.  The systems take turns, one beat at a
time, so neither steals the other's CPU.

Scenarios:

* ``minute``: ``--minute-entries`` crontab entries, each ``crontab()`` (every
  minute), measured over ``--minutes`` minute boundaries that start after
  the beat has loaded its schedule and gone idle.  Lateness of a run =
  arrival on the broker - the minute boundary it was due at.
* ``per-second``: ``--second-entries`` interval entries of ``--every``
  seconds (1,000 x 1 s = 1,000 fires/s), measured for ``--seconds`` after
  ``--warmup`` seconds.  corekit's runs sit on a fixed grid (base + k x
  every); Celery's run at last run + every, so they drift.  The same
  definition serves both: the k-th run of an entry is due at ``arrival_0 +
  k x every``, arrival_0 being its first arrival since the beat started, and
  is late by ``arrival_k - that`` (a drift shows as growing lateness).  The
  runs counted are those due inside the window; ``missing`` are the ones that
  had not arrived ``GRACE`` seconds after it.  For corekit,
  ``grid_lateness_*`` is also measured against its real schedule: each
  message's task id names its run (``service.run_task_id`` of the entry's
  stored base and scheduled time), which is what the target judges.

Minute runs fired are the messages that arrived from a second before the
first boundary on, expected is entries x boundaries; duplicates are the
same entry twice at one boundary (minute) or the same task id twice.  For
corekit every minute message's task id is also checked against its entry's
run at the boundary it was counted for.  CPU is user + system seconds of the
beat process over the measured window (``/proc/<pid>/stat``), also per
1,000 runs fired (a beat that falls behind does less work in the window);
RSS is its peak (``VmHWM``).  Targets: p99 lateness <= 100 ms at 1,000
fires/s; beat CPU <= 1/5 of Celery beat's.  The machine's load average is
printed with each measurement: on a shared machine it moves the p99.

``BENCH_BEAT_PROFILE=DIR`` runs each beat under cProfile, writing
``DIR/<module>-<scenario>.prof`` when it stops.  Not a test: nothing asserts.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from beat_figures import (SCENARIOS, Arrival, Measured, check_minute_ids,  # noqa: E402
                          grid_lateness, read_arrivals, rows, table, verdicts)
from beat_sides import Side, cpu_seconds, log, memory_kb, stop_process  # noqa: E402
from servers import redis_server  # noqa: E402

STARTUP_TIMEOUT = 300.0
#: seconds after the per-second window for its runs to arrive
GRACE = 3.0


def count_lines(path: Path, since: float) -> int:
    """Messages the observer saw at or after *since* (its file is small)."""
    return sum(1 for a in read_arrivals(path) if a.at >= since)


def flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


class Run:
    """A beat and its observer for one scenario; stopped on exit."""

    def __init__(self, side: Side, scenario: str, entries: int, every: float) -> None:
        self.side, self.scenario = side, scenario
        tag = f"{side.module}-{scenario}"
        flush(side.broker_url)
        self.out = side.workdir / f"arrivals-{tag}.txt"
        self.observer = side.start_observer(self.out)
        self._wait(lambda: self.out.exists() and self.out.read_text().startswith("ready"),
                   60, "observer connected", self.observer)
        self.beat, self.log_path, self.ready = side.start_beat(scenario, entries, every, tag)
        self.peak_rss = 0

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            log(f"{self.side.name} beat log ({self.log_path}) ends:\n{self.log_tail()}")
        stop_process(self.beat)
        stop_process(self.observer)

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    def _wait(self, done: Any, timeout: float, what: str, proc: Any = None) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            self.check_alive(proc)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.side.name} {self.scenario}: no {what} in {timeout:.0f} s")
            time.sleep(0.05)

    def check_alive(self, proc: Any = None) -> None:
        for p in (proc,) if proc is not None else (self.beat, self.observer):
            if p.poll() is not None:
                raise RuntimeError(f"{self.side.name} {self.scenario}: pid {p.pid} exited "
                                   f"({p.returncode})")

    def wait_loaded(self) -> None:
        """Until the beat leads (`Side.leads`: corekit's lease, Celery's
        beat_init), then until its CPU goes quiet: its schedule is loaded."""
        self._wait(lambda: self.side.leads(self.ready), STARTUP_TIMEOUT,
                   "beat_init" if self.side.name == "Celery" else "lease taken", self.beat)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last = cpu_seconds(self.beat.pid)
        while time.monotonic() < deadline:
            time.sleep(1.0)
            self.check_alive()
            now = cpu_seconds(self.beat.pid)
            if now - last <= 0.02:
                return
            last = now
        raise RuntimeError(f"{self.side.name} beat still busy {STARTUP_TIMEOUT:.0f} s after start")

    def sleep_until(self, when: float, sample: bool = True) -> None:
        while (left := when - time.time()) > 0:
            self.check_alive()
            if sample:
                self.sample_rss()
            time.sleep(min(left, 0.5))

    def sample_rss(self) -> None:
        self.peak_rss = max(self.peak_rss, memory_kb(self.beat.pid)["VmHWM"])

    def finish(self, m: Measured, cpu0: float, t0: float) -> None:
        """CPU since *cpu0*, peak RSS and the window, taken now."""
        m.cpu_s = cpu_seconds(self.beat.pid) - cpu0
        m.window_s = time.time() - t0
        self.sample_rss()
        m.rss_peak_mb = self.peak_rss / 1024


def measure_minute(side: Side, entries: int, minutes: int) -> Measured:
    m = Measured(side.name, "minute", expected=entries * minutes)
    with Run(side, "minute", entries, 60.0) as run:
        run.wait_loaded()
        first = math.ceil((time.time() + 2) / 60) * 60
        boundaries = [float(first + 60 * i) for i in range(minutes)]
        log(f"{side.name} minute: loaded; measuring boundaries at "
            f"{', '.join(time.strftime('%H:%M', time.gmtime(b)) for b in boundaries)} UTC")
        run.sleep_until(first - 1, sample=False)
        t0, cpu0, load0 = time.time(), cpu_seconds(run.beat.pid), os.getloadavg()[0]
        run.sleep_until(boundaries[-1] + 59)  # a fixed window: CPU over N whole minutes
        run.finish(m, cpu0, t0)
        m.load = (load0, os.getloadavg()[0])
    arrivals = [a for a in read_arrivals(run.out) if a.at >= first - 1]
    seen: dict[tuple[float, str], int] = {}
    for a in arrivals:
        due = max((b for b in boundaries if b - 1 <= a.at), default=boundaries[0])
        m.lateness_ms.append((a.at - due) * 1000)
        seen[(due, a.key)] = seen.get((due, a.key), 0) + 1
    m.fired = len(arrivals)
    m.duplicates = sum(n - 1 for n in seen.values() if n > 1)
    m.missing = m.expected - len(seen)
    if side.name == "corekit":
        m.notes.append(check_minute_ids(side.stored_bases(), arrivals, boundaries))
    return m


def measure_per_second(side: Side, entries: int, seconds: float, every: float,
                       warmup: float, label: str = "per-second") -> Measured:
    """*label*: the scenario's name in the figures (and the beat's BENCH_SCENARIO)."""
    m = Measured(side.name, label)
    with Run(side, label, entries, every) as run:
        run._wait(lambda: count_lines(run.out, 0) > 0, STARTUP_TIMEOUT, "first run", run.beat)
        t0 = time.time() + warmup
        run.sleep_until(t0, sample=False)
        cpu0, load0 = cpu_seconds(run.beat.pid), os.getloadavg()[0]
        run.sleep_until(t0 + seconds)
        run.finish(m, cpu0, t0)
        m.load = (load0, os.getloadavg()[0])
        time.sleep(GRACE)  # let the window's last runs land
    t1 = t0 + seconds
    by_key: dict[str, list[Arrival]] = {}
    for a in read_arrivals(run.out):
        by_key.setdefault(a.key, []).append(a)
        m.arrived_in_window += t0 <= a.at < t1
    m.expected = 0
    for got in by_key.values():
        got.sort(key=lambda a: a.at)
        start = got[0].at
        first_k = max(0, math.ceil((t0 - start) / every))
        last_k = math.ceil((t1 - start) / every) - 1
        m.expected += last_k - first_k + 1
        for k in range(first_k, min(last_k + 1, len(got))):
            m.lateness_ms.append((got[k].at - (start + k * every)) * 1000)
            m.fired += 1
    m.expected += round((entries - len(by_key)) * seconds / every)
    m.missing = max(0, m.expected - m.fired)
    all_ids = [a.task_id for got in by_key.values() for a in got]
    m.duplicates = len(all_ids) - len(set(all_ids))
    if len(by_key) < entries:
        m.notes.append(f"{entries - len(by_key)} entries never fired")
    if side.name == "corekit":
        m.notes.append(grid_lateness(side.stored_bases(), by_key, t0, t1, every, m.grid_ms))
    return m


def machine_info(redis: Any) -> dict[str, Any]:
    import celery

    import corekit

    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "celery": celery.__version__, "corekit": corekit.__version__,
            "redis-server": redis.version, "load_at_start": round(os.getloadavg()[0], 2)}


def chosen(parser: argparse.ArgumentParser, args: argparse.Namespace,
           known: Sequence[str]) -> tuple[list[str], list[str]]:
    """``--scenarios`` (of *known*) and ``--systems`` (corekit, Celery),
    checked: a usage error names the choices."""
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if not scenarios or set(scenarios) - set(known):
        parser.error(f"--scenarios: choose from {','.join(known)}")
    names = {"corekit": "corekit", "celery": "Celery"}
    systems = [names.get(s.strip().lower(), s) for s in args.systems.split(",") if s.strip()]
    if not systems or set(systems) - {"corekit", "Celery"}:
        parser.error("--systems: choose from corekit,Celery")
    return scenarios, systems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="--minutes 1 --seconds 10 (unless given)")
    parser.add_argument("--minutes", type=int, default=None, help="minute boundaries (2)")
    parser.add_argument("--seconds", type=float, default=None, help="per-second window (30)")
    parser.add_argument("--warmup", type=float, default=5.0, help="per-second warm-up seconds")
    parser.add_argument("--minute-entries", type=int, default=10000)
    parser.add_argument("--second-entries", type=int, default=1000)
    parser.add_argument("--every", type=float, default=1.0, help="per-second interval (s)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--systems", default="corekit,Celery",
                        help="which beats to run (default both: corekit,Celery)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the beats' logs and the observers' arrival files in DIR")
    parser.add_argument("--json", metavar="PATH", help="write the rows here")
    parser.add_argument("--out", type=Path, metavar="DIR", help="write DIR/bench_beat.json")
    args = parser.parse_args()
    minutes = args.minutes or (1 if args.quick else 2)
    seconds = args.seconds or (10.0 if args.quick else 30.0)
    scenarios, systems = chosen(parser, args, SCENARIOS)
    started = time.monotonic()
    results: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="corekit-bench-beat-") as tmp, ExitStack() as stack:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        redis = stack.enter_context(redis_server())
        machine = machine_info(redis)
        sides = [Side(name, workdir, redis.db_url(3 if name == "corekit" else 1))
                 for name in ("corekit", "Celery") if name in systems]
        for n, scenario in enumerate(scenarios):
            for side in sides if n % 2 == 0 else sides[::-1]:
                log(f"{scenario}: {side.name} (load average {os.getloadavg()[0]:.2f})")
                if scenario == "minute":
                    got = measure_minute(side, args.minute_entries, minutes)
                else:
                    got = measure_per_second(side, args.second_entries, seconds, args.every,
                                             args.warmup)
                results.append(got)
    out_rows = rows(results)
    print(f"corekit beat beside Celery beat on Redis: minute = {args.minute_entries:,} crontab() "
          f"entries over {minutes} boundaries; per-second = {args.second_entries:,} entries "
          f"every {args.every:g} s for {seconds:g} s after {args.warmup:g} s "
          f"(lateness there = arrival_k - (first arrival + k x every), for both)")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()))
    print(table(out_rows, results))
    for line in verdicts(out_rows):
        print("target: " + line)
    data = {"machine": machine, "rows": out_rows, "verdicts": verdicts(out_rows),
            "settings": {"minutes": minutes, "seconds": seconds, "warmup": args.warmup,
                         "minute_entries": args.minute_entries,
                         "second_entries": args.second_entries, "every": args.every}}
    paths = [Path(args.json)] if args.json else []
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        paths.append(args.out / "bench_beat.json")
    for path in paths:
        path.write_text(json.dumps(data, indent=2) + "\n")
    log(f"took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
