"""What the OpenTelemetry plugin costs a producer: ``delay()`` in a loop,
with the plugin off and on.

    python benchmarks/bench_otel.py [--messages 20000] [--runs 5] [--broker URL]

Each mode runs in a fresh interpreter (the plugin connects its receivers
once per process, and OpenTelemetry allows one tracer provider per
process), sends ``--messages`` tasks with ``add.delay(1, 2)`` after 500
warm-up sends, and reports the median over ``--runs`` runs of the CPU time per
call (the process's, so the span processor's export thread counts; CPU time
rather than wall time, so that other work on the machine moves the figures
less; the modes take turns, run by run):

* ``off``: the plugin inactive (OpenTelemetry hidden from the interpreter,
  as when the extra is not installed): corekit alone;
* ``api``: the plugin active, no SDK set up: what having OpenTelemetry
  installed costs a program that does not trace (the plugin then connects
  no span receiver);
* ``sdk``: an SDK ``TracerProvider`` with a ``BatchSpanProcessor`` and an
  exporter that drops the spans: making, injecting and ending a span;
* ``sdk+parent``: the same inside a current span (the usual case in a
  traced web request or task).

The broker defaults to ``memory://``, so the figures are the producer's own
CPU time, without a network round trip (a Redis ``--broker`` adds the same
round trip to every mode).  Not a test: nothing asserts.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap

MODES = ("off", "api", "sdk", "sdk+parent")

SCRIPT = textwrap.dedent('''
    import json, sys, time
    mode, broker, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "off":
        sys.modules["opentelemetry"] = None  # as if the extra were not installed
    import contextlib
    parent = contextlib.nullcontext()
    if mode.startswith("sdk"):
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (BatchSpanProcessor, SpanExporter,
                                                    SpanExportResult)

        class Drop(SpanExporter):
            def export(self, spans):
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=65536))
        trace.set_tracer_provider(provider)
        if mode == "sdk+parent":
            parent = trace.get_tracer("bench").start_as_current_span("request")
    from corekit import Corekit
    app = Corekit("bench", broker=broker, backend=broker, task_ignore_result=True)

    @app.task(name="bench.add")
    def add(x, y):
        return x + y

    with parent:
        for _ in range(500):
            add.delay(1, 2)
        began = time.process_time()
        for _ in range(count):
            add.delay(1, 2)
        if mode.startswith("sdk"):
            provider.force_flush()  # the export thread's share of the work
        took = time.process_time() - began
    from corekit import signals
    connected = bool(signals.before_task_publish.receivers)
    print(json.dumps({"per_call_us": took / count * 1e6, "receivers": connected}))
''')


def run(mode: str, broker: str, count: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode, broker, str(count)],
                         capture_output=True, text=True, timeout=600)
    if out.returncode:
        raise SystemExit(f"{mode}: {out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--broker", default="memory://bench-otel")
    args = parser.parse_args()
    runs: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(args.runs):  # the modes take turns: a load that drifts hits them all
        for mode in MODES:
            figure = run(mode, args.broker, args.messages)
            assert figure["receivers"] == mode.startswith("sdk"), (mode, figure)
            runs[mode].append(figure["per_call_us"])
    figures = {mode: statistics.median(values) for mode, values in runs.items()}
    base = figures["off"]
    print(f"delay() x {args.messages} on {args.broker}, median of {args.runs} runs")
    print(f"{'mode':<12}{'CPU us/call':>12}{'added':>10}")
    for mode, per_call in figures.items():
        print(f"{mode:<12}{per_call:>12.1f}{per_call - base:>+10.1f}")


if __name__ == "__main__":
    main()
