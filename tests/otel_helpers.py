"""OpenTelemetry for the tracing tests: an exporter writing spans as JSON
lines (a worker subprocess's spans, read by the test), `configure` to set a
process's tracer provider from ``OTEL_TEST_SPANS`` (imported by the apps of
worker subprocesses), and reading spans back in one shape whichever process
made them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (SimpleSpanProcessor, SpanExporter,
                                            SpanExportResult)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from helpers import ROOT, LineReader


def as_dict(span: ReadableSpan) -> dict[str, Any]:
    """A finished span as plain data (ids as hex, as traceparent writes them)."""
    ctx = span.get_span_context()
    assert ctx is not None
    return {"name": span.name, "kind": span.kind.name,
            "trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}",
            "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
            "attributes": dict(span.attributes or {}),
            "status": span.status.status_code.name, "description": span.status.description,
            "events": [{"name": e.name, "attributes": dict(e.attributes or {})}
                       for e in span.events],
            "pid": os.getpid()}


class JsonLinesExporter(SpanExporter):
    """Appends each span to *path* as one JSON line (one write per span, so
    prefork children and their parent share the file safely)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(as_dict(s), default=str) + "\n" for s in spans)
        with self.lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, lines.encode())
            finally:
                os.close(fd)
        return SpanExportResult.SUCCESS


def configure() -> None:
    """The tracer provider of a worker subprocess: its spans go to the file
    named by ``OTEL_TEST_SPANS`` (nothing is set up without it)."""
    path = os.environ.get("OTEL_TEST_SPANS")
    if path:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(path)))
        trace.set_tracer_provider(provider)


def read_spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Recording(trace.TracerProvider):
    """The test process's global tracer provider (OpenTelemetry allows one
    per process, and the other tests that run in it must not see traced
    messages): while ``on``, spans are the SDK's, kept by an in-memory
    exporter; otherwise OpenTelemetry's no-op tracer makes them, as in a
    process where no provider is set up."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.sdk = TracerProvider()
        self.sdk.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.on = False

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return Switched(self, self.sdk.get_tracer(*args, **kwargs))


class Switched(trace.Tracer):
    def __init__(self, recording: Recording, real: trace.Tracer) -> None:
        self.recording, self.real, self.noop = recording, real, trace.NoOpTracer()

    def _tracer(self) -> trace.Tracer:
        return self.real if self.recording.on else self.noop

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._tracer().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._tracer().start_as_current_span(*args, **kwargs)


_recording: Recording | None = None


def recording() -> Recording:
    """The test process's `Recording` provider, set as the global one on first use."""
    global _recording
    if _recording is None:
        _recording = Recording()
        trace.set_tracer_provider(_recording)
        assert trace.get_tracer_provider() is _recording, "another global provider was set first"
        from corekit.plugins.opentelemetry.tracing import connect

        # the process may have sent a task before this, without an SDK: nothing connected
        assert connect()
    return _recording


class Process(LineReader):
    """A command in *cwd*, with the tests directory and *cwd* importable,
    its output read line by line by a thread."""

    def __init__(self, cwd: Path, args: Sequence[str], env: dict[str, str]) -> None:
        super().__init__([sys.executable, "-m", *args], cwd,
                         {**os.environ, **env,
                          "PYTHONPATH": os.pathsep.join([str(cwd), str(ROOT / "tests")])})

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        return super().wait_for(pattern, timeout)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        return self.output
