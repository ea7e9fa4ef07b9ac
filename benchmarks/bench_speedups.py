"""Each hot-path module beside its pure-Python twin: ops/s and the ratio.

    python benchmarks/bench_speedups.py

Medians of 5 runs; about 20 s in all.  Not a test: nothing here asserts.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable

from corekit._speedups import load
from corekit.messages import build_message, task_headers
from corekit.transport import Message

RUNS = 5


def messages(n: int) -> list[Message]:
    out = []
    for i in range(n):
        h = task_headers("proj.tasks.add", f"id-{i}", [i, i], {}, eta=1795341600.5 + i,
                         expires=1795345200.0)
        out.append(build_message(h, b"[[1,1],{},{}]", "application/json", "utf-8", None,
                                 queue="celery"))
    return out


def bench_parse(impl: Any) -> tuple[int, Callable[[], None]]:
    stamps = [f"2026-11-22T10:{i % 60:02d}:{(i * 7) % 60:02d}.{i:06d}+00:00"
              for i in range(20000)]
    parse = impl.parse_iso8601
    return len(stamps), lambda: [parse(s) for s in stamps]  # type: ignore[func-returns-value]


def bench_decode(impl: Any) -> tuple[int, Callable[[], None]]:
    batch = messages(1000)
    decode = impl.decode_batch
    return 10 * len(batch), lambda: [decode(batch) for _ in range(10)]  # type: ignore


def bench_heap(impl: Any) -> tuple[int, Callable[[], None]]:
    whens = [((i * 7919) % 100000) / 7.0 for i in range(100000)]

    def run() -> None:
        heap = impl.EtaHeap()
        push = heap.push
        for w in whens:
            push(w, None)
        heap.pop_due(1e12)
    return 2 * len(whens), run


def bench_dispatch(impl: Any) -> tuple[int, Callable[[], None]]:
    n = 100000

    def run() -> None:
        d = impl.Dispatcher(lambda req: None, 64)
        done, take = d.done, d.take_acks
        for start in range(0, n, 64):
            d.add(list(range(start, start + 64)))
            d.dispatch()
            for i in range(start, start + 64):
                done(i, i)
            take()
    return n, run


def measure(factory: Callable[[Any], tuple[int, Callable[[], None]]], impl: Any) -> float:
    ops, run = factory(impl)
    rates = []
    for _ in range(RUNS):
        start = time.perf_counter()
        run()
        rates.append(ops / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    python, cython = load("python"), load("cython")
    print(f"{'module':<28}{'python ops/s':>15}{'cython ops/s':>15}{'ratio':>8}")
    for label, factory in [("decode: parse_iso8601", bench_parse),
                           ("decode: decode_batch", bench_decode),
                           ("etaheap: push + pop_due", bench_heap),
                           ("dispatch: add/dispatch/done", bench_dispatch)]:
        p, c = measure(factory, python), measure(factory, cython)
        print(f"{label:<28}{p:>15,.0f}{c:>15,.0f}{c / p:>7.1f}x")


if __name__ == "__main__":
    main()
