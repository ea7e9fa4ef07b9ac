"""Each hot-path module beside its pure-Python twin: ops/s and the ratio.

    python benchmarks/bench_speedups.py [--runs 5] [--json PATH]

Medians of 5 runs, a few seconds in all (well under 20 s).  Not a test:
nothing here asserts; the target is compiled >= 3x twin.  ``--json`` also
writes the rows (section "speedups", the compiled module's ops/s under
"corekit", its twin's under "twin", and their ratio) for benchmarks/run.py.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from typing import Any, Callable

from corekit._speedups import load
from corekit.messages import build_message, task_headers
from corekit.messages import Message

RUNS = 5
TARGET = 3.0
Bench = Callable[[Any], tuple[int, Callable[[], object]]]


def messages(n: int) -> list[Message]:
    """Task messages as corekit publishes them: ETA, expiry, time limits."""
    out = []
    for i in range(n):
        h = task_headers("proj.tasks.add", f"6f1c2a9e-0b7d-4c38-9a51-{i:012d}", [i, i], {},
                         eta=1795341600.5 + i, expires=1795345200.0, retries=i % 3,
                         time_limit=30.0, soft_time_limit=25.0, group_id="g-1")
        out.append(build_message(h, b"[[1,1],{},{}]", "application/json", "utf-8", None,
                                 queue="celery"))
    return out


def bench_parse(impl: Any) -> tuple[int, Callable[[], object]]:
    stamps = [f"2026-11-22T10:{i % 60:02d}:{(i * 7) % 60:02d}.{i % 1000000:06d}+00:00"
              for i in range(20000)]
    parse = impl.parse_iso8601
    return len(stamps), lambda: [parse(s) for s in stamps]


def bench_decode(impl: Any) -> tuple[int, Callable[[], object]]:
    batch = messages(1000)
    decode = impl.decode_batch
    return 10 * len(batch), lambda: [decode(batch) for _ in range(10)]


def bench_heap(impl: Any) -> tuple[int, Callable[[], object]]:
    whens = [((i * 7919) % 100000) / 7.0 for i in range(100000)]

    def run() -> object:
        heap = impl.EtaHeap()
        push = heap.push
        for w in whens:
            push(w, None)
        return heap.pop_due(1e12)
    return 2 * len(whens), run


def bench_dispatch(impl: Any) -> tuple[int, Callable[[], object]]:
    n, batch = 100000, 64

    def run() -> object:
        d = impl.Dispatcher(lambda req: None, batch)
        done, take, add, dispatch = d.done, d.take_acks, d.add, d.dispatch
        for start in range(0, n, batch):
            requests = list(range(start, start + batch))
            add(requests)
            dispatch()
            for i in requests:
                done(i, i)
            take()
        return d
    return n, run


def measure(factory: Bench, impl: Any, runs: int = RUNS) -> float:
    ops, run = factory(impl)
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        rates.append(ops / (time.perf_counter() - start))
    return statistics.median(rates)


BENCHES: list[tuple[str, Bench]] = [
    ("decode: parse_iso8601", bench_parse),
    ("decode: decode_batch (1000)", bench_decode),
    ("etaheap: push + pop_due 100k", bench_heap),
    ("dispatch: add/dispatch/done 100k", bench_dispatch),
]


def row(label: str, python: float, cython: float | None) -> dict[str, Any]:
    return {"section": "speedups", "broker": "", "pool": "", "metric": label,
            "unit": "ops/s", "celery": None, "corekit": None if cython is None else round(cython),
            "twin": round(python), "ratio": None if cython is None else round(cython / python, 2),
            "better": "higher"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per median")
    parser.add_argument("--json", metavar="PATH", help="also write the rows here")
    args = parser.parse_args()
    rows = []
    python = load("python")
    try:
        cython = load("cython")
    except ImportError as exc:
        print(f"compiled modules not built ({exc}); timing the twins only")
        cython = None
    started = time.perf_counter()
    print(f"Python {sys.version.split()[0]}, medians of {args.runs} runs, ops/s")
    print(f"{'':<34}{'python':>13}{'cython':>13}{'ratio':>8}")
    for label, factory in BENCHES:
        p = measure(factory, python, args.runs)
        if cython is None:
            rows.append(row(label, p, None))
            print(f"{label:<34}{p:>13,.0f}")
            continue
        c = measure(factory, cython, args.runs)
        rows.append(row(label, p, c))
        note = "" if c / p >= TARGET else f"  (below the {TARGET:.0f}x target)"
        print(f"{label:<34}{p:>13,.0f}{c:>13,.0f}{c / p:>7.1f}x{note}")
    print(f"total {time.perf_counter() - started:.1f} s")
    if args.json:
        from corekit import _speedups

        machine = {"python": platform.python_version(),
                   "speedups": _speedups.IMPLEMENTATION}
        with open(args.json, "w") as out:
            json.dump({"machine": machine, "rows": rows}, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
