"""The OpenTelemetry plugin: a span per task published and run, one trace
from a corekit or Celery client through a corekit or Celery worker.

Spans of the test process go to an in-memory exporter (`otel_helpers.recording`);
a worker subprocess's app module sets up a provider that writes JSON lines
(`otel_helpers.configure`), read back once the results are in (a run span
ends before its result is stored)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("opentelemetry.sdk", reason="opentelemetry is a test dependency "
                                                "(pip install -e '.[test]')")

from opentelemetry import trace  # noqa: E402

from corekit import Corekit  # noqa: E402
from corekit.exceptions import PublishError  # noqa: E402
from corekit.testing import start_worker  # noqa: E402
from helpers import ROOT  # noqa: E402
from otel_helpers import Process, as_dict, read_spans, recording  # noqa: E402

PROJ = '''
import otel_helpers; otel_helpers.configure()
import asyncio, os
from corekit import Corekit

app = Corekit("otel_proj", broker=os.environ["BROKER"], backend=os.environ["BACKEND"])

@app.task(name="otel.add")
def add(x, y):
    return x + y

@app.task(name="otel.fail")
def fail():
    raise KeyError("missing")

@app.task(name="otel.parent")
def parent(x):
    return add.delay(x, 1).id

@app.task(name="otel.aparent")
async def aparent(x):
    await asyncio.sleep(0)
    return add.delay(x, 1).id
'''


@pytest.fixture
def spans() -> Iterator[Any]:
    """The test process's finished spans, recorded for this test only."""
    rec = recording()
    rec.exporter.clear()
    rec.on = True
    try:
        yield lambda: [as_dict(s) for s in rec.exporter.get_finished_spans()]
    finally:
        rec.on = False
        rec.exporter.clear()


def one(found: list[dict[str, Any]], name: str, **match: Any) -> dict[str, Any]:
    hits = [s for s in found if s["name"] == name
            and all(s["attributes"].get(k) == v for k, v in match.items())]
    assert len(hits) == 1, (name, match, found)
    return hits[0]


def worker(tmp_path: Path, broker: str, backend: str, pool: str) -> tuple[Process, Path]:
    (tmp_path / "otel_proj.py").write_text(PROJ)
    path = tmp_path / f"spans-{pool}.jsonl"
    proc = Process(tmp_path, ["corekit", "-A", "otel_proj", "worker", "-P", pool, "-c", "2",
                              "-l", "info", "--no-banner"],
                   {"BROKER": broker, "BACKEND": backend, "OTEL_TEST_SPANS": str(path)})
    proc.wait_for("ready")
    return proc, path


@pytest.mark.parametrize("pool", ["solo", "threads", "prefork", "eventlet", "asyncio"])
def test_a_trace_goes_from_a_corekit_client_through_a_corekit_worker(
        pool: str, redis_url: str, tmp_path: Path, spans: Any) -> None:
    """(a) publish span -> run span on every pool, attributes as Celery's
    instrumentation sets them, a failure recorded; (d) a task that sends
    another: the child's publish span inside the run span, one trace."""
    proc, path = worker(tmp_path, redis_url, redis_url, pool)
    client = Corekit("otel_proj", broker=redis_url, backend=redis_url)
    try:
        with trace.get_tracer("test").start_as_current_span("client") as root:
            added = client.send_task("otel.add", (2, 3))
            failed = client.send_task("otel.fail")
            parent_task = "otel.aparent" if pool == "asyncio" else "otel.parent"
            sent_parent = client.send_task(parent_task, (5,))
        assert added.get(timeout=30) == 5
        with pytest.raises(KeyError):
            failed.get(timeout=30)
        child_id = sent_parent.get(timeout=30)
        assert client.AsyncResult(child_id).get(timeout=30) == 6
    finally:
        output = proc.stop()
        client.close()
    ours, theirs = spans(), read_spans(path)
    trace_id = f"{root.get_span_context().trace_id:032x}"
    assert {s["trace_id"] for s in ours + theirs} == {trace_id}, output

    publish = one(ours, "apply_async/otel.add")
    assert publish["kind"] == "PRODUCER"
    assert publish["parent_id"] == f"{root.get_span_context().span_id:016x}"
    assert publish["attributes"] == {
        "celery.action": "apply_async", "messaging.message.id": added.id,
        "celery.task_name": "otel.add", "messaging.destination_kind": "queue",
        "messaging.destination": "celery"}
    run = one(theirs, "run/otel.add", **{"messaging.message.id": added.id})
    assert run["kind"] == "CONSUMER" and run["parent_id"] == publish["span_id"]
    assert run["status"] == "UNSET"
    attributes = run["attributes"]
    assert {k: attributes[k] for k in ("celery.action", "celery.state", "celery.task_name",
                                       "messaging.conversation_id", "messaging.destination")
            } == {"celery.action": "run", "celery.state": "SUCCESS",
                  "celery.task_name": "otel.add", "messaging.conversation_id": added.id,
                  "messaging.destination": "celery"}
    assert attributes["celery.hostname"].startswith(f"{os.getpid()}@")  # the sender's origin
    assert "'routing_key': 'celery'" in attributes["celery.delivery_info"]

    failure = one(theirs, "run/otel.fail")
    assert failure["parent_id"] == one(ours, "apply_async/otel.fail")["span_id"]
    assert failure["status"] == "ERROR" and failure["description"] == "'missing'"
    assert failure["attributes"]["celery.state"] == "FAILURE"
    [event] = failure["events"]
    assert event["name"] == "exception"
    assert event["attributes"]["exception.type"] == "KeyError"
    assert 'raise KeyError("missing")' in event["attributes"]["exception.stacktrace"]

    outer = one(theirs, f"run/{parent_task}")
    assert outer["parent_id"] == one(ours, f"apply_async/{parent_task}")["span_id"]
    inner_publish = one(theirs, "apply_async/otel.add")
    assert inner_publish["parent_id"] == outer["span_id"]
    inner_run = one(theirs, "run/otel.add", **{"messaging.message.id": child_id})
    assert inner_run["parent_id"] == inner_publish["span_id"]
    if pool == "prefork":  # the runs happened in the children, not in the worker
        assert {s["pid"] for s in theirs} != {proc.proc.pid}


CELERY_PROJ = '''
import otel_helpers; otel_helpers.configure()
import os
from celery import Celery
from opentelemetry.instrumentation.celery import CeleryInstrumentor

CeleryInstrumentor().instrument()
app = Celery("proj", broker=os.environ["BROKER"], backend=os.environ["BACKEND"])

@app.task(name="otel.add")
def add(x, y):
    return x + y
'''


@pytest.fixture
def instrumented_celery(amqp_url: str, redis_url: str) -> Iterator[Any]:
    celery = pytest.importorskip("celery")
    instrumentation = pytest.importorskip("opentelemetry.instrumentation.celery")
    instrumentor = instrumentation.CeleryInstrumentor()
    instrumentor.instrument(tracer_provider=trace.get_tracer_provider())
    app = celery.Celery("proj", broker=amqp_url, backend=redis_url)
    try:
        yield app
    finally:
        instrumentor.uninstrument()
        app.close()


def test_b_a_celery_client_s_trace_goes_on_in_a_corekit_worker(
        instrumented_celery: Any, amqp_url: str, redis_url: str, spans: Any) -> None:
    ours = Corekit("proj", broker=amqp_url, backend=redis_url)

    @ours.task(name="otel.add")
    def add(x: int, y: int) -> int:
        return x + y

    try:
        with start_worker(ours, pool="threads"):
            result = instrumented_celery.send_task("otel.add", (1, 2))
            assert result.get(timeout=30) == 3
    finally:
        ours.close()
    found = spans()
    publish = one(found, "apply_async/otel.add")  # Celery's instrumentation's
    run = one(found, "run/otel.add")  # ours
    assert run["trace_id"] == publish["trace_id"] and run["parent_id"] == publish["span_id"]
    assert run["attributes"]["messaging.message.id"] == result.id
    assert run["attributes"]["celery.state"] == "SUCCESS"


def test_c_a_corekit_client_s_trace_goes_on_in_a_celery_worker(
        amqp_url: str, redis_url: str, tmp_path: Path, spans: Any) -> None:
    pytest.importorskip("opentelemetry.instrumentation.celery")
    (tmp_path / "celery_proj.py").write_text(CELERY_PROJ)
    path = tmp_path / "celery-spans.jsonl"
    proc = Process(tmp_path, ["celery", "-A", "celery_proj", "worker", "--pool", "solo",
                              "-l", "info", "--without-mingle", "--without-gossip",
                              "--without-heartbeat"],
                   {"BROKER": amqp_url, "BACKEND": redis_url, "OTEL_TEST_SPANS": str(path)})
    ours = Corekit("proj", broker=amqp_url, backend=redis_url)
    try:
        proc.wait_for("ready")
        result = ours.send_task("otel.add", (20, 22), time_limit=10)
        assert result.get(timeout=30) == 42
    finally:
        output = proc.stop()
        ours.close()
    publish = one(spans(), "apply_async/otel.add")
    run = one(read_spans(path), "run/otel.add")  # Celery's instrumentation's
    assert run["trace_id"] == publish["trace_id"], output
    assert run["parent_id"] == publish["span_id"]
    assert run["attributes"]["messaging.message.id"] == result.id
    assert run["attributes"]["celery.timelimit"] == ["10", ""]


def test_a_run_span_s_attributes_are_named_as_celery_s(
        instrumented_celery: Any, amqp_url: str, redis_url: str, tmp_path: Path,
        spans: Any) -> None:
    """The same call (retries, time limits, ETA) run by corekit and by an
    instrumented Celery worker: one set of attribute names."""
    (tmp_path / "celery_proj.py").write_text(CELERY_PROJ)
    path = tmp_path / "celery-spans.jsonl"
    options = dict(countdown=0.1, retries=2, time_limit=10, soft_time_limit=5)
    ours = Corekit("proj", broker=amqp_url, backend=redis_url)

    @ours.task(name="otel.add")
    def add(x: int, y: int) -> int:
        return x + y

    try:
        with start_worker(ours, pool="threads"):
            mine = instrumented_celery.send_task("otel.add", (1, 1), **options)
            assert mine.get(timeout=30) == 2
        proc = Process(tmp_path, ["celery", "-A", "celery_proj", "worker", "--pool", "solo",
                                  "-l", "info", "--without-mingle", "--without-gossip",
                                  "--without-heartbeat"],
                       {"BROKER": amqp_url, "BACKEND": redis_url, "OTEL_TEST_SPANS": str(path)})
        try:
            proc.wait_for("ready")
            theirs_result = instrumented_celery.send_task("otel.add", (1, 1), **options)
            assert theirs_result.get(timeout=30) == 2
        finally:
            proc.stop()
    finally:
        ours.close()
    run = one(spans(), "run/otel.add")["attributes"]
    celery_run = one(read_spans(path), "run/otel.add")["attributes"]
    assert set(run) == set(celery_run), (run, celery_run)
    for same in ("celery.action", "celery.state", "celery.task_name", "celery.retries",
                 "celery.timelimit", "celery.hostname", "messaging.destination"):
        value = run[same]
        assert (list(value) if isinstance(value, tuple) else value) == celery_run[same], same


def test_a_retry_is_sent_inside_the_run_that_retried(redis_app: Corekit, spans: Any) -> None:
    @redis_app.task(name="otel.flaky", bind=True)
    def flaky(self: Any) -> int:
        if not self.request.retries:
            raise self.retry(exc=ConnectionError("no answer"), countdown=0, max_retries=1)
        return self.request.retries

    with start_worker(redis_app, pool="threads"):
        assert flaky.delay().get(timeout=30) == 1
    found = spans()
    first = one(found, "run/otel.flaky", **{"celery.state": "RETRY"})
    assert first["attributes"]["celery.retry.reason"] == "no answer"
    assert first["status"] == "UNSET"
    resend = [s for s in found if s["name"] == "apply_async/otel.flaky"
              and s["parent_id"] == first["span_id"]]
    assert len(resend) == 1
    second = one(found, "run/otel.flaky", **{"celery.state": "SUCCESS"})
    assert second["parent_id"] == resend[0]["span_id"]
    assert second["attributes"]["celery.retries"] == 1
    assert second["trace_id"] == first["trace_id"]


HOSTILE = ["00-not-a-trace-00", "00-00000000000000000000000000000000-0000000000000000-01",
           "x" * 100_000, 12345, ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
           {"traceparent": "x"}, None]


def test_e_a_malformed_trace_context_starts_a_new_trace(redis_app: Corekit,
                                                         spans: Any) -> None:
    """A hostile producer's headers (published without the signals, so the
    plugin cannot replace them): each task still runs, in a trace of its own."""

    @redis_app.task(name="otel.add")
    def add(x: int, y: int) -> int:
        return x + y

    messages = []
    for i, value in enumerate(HOSTILE):
        message = redis_app.prepare_task("otel.add", (i, 1))
        message.headers.update(traceparent=value, tracestate=value, baggage=value)
        messages.append(message)
    redis_app.publish(messages)
    with start_worker(redis_app, pool="threads", concurrency=2):
        for i, message in enumerate(messages):
            assert redis_app.AsyncResult(message.headers["id"]).get(timeout=30) == i + 1
    runs = [s for s in spans() if s["name"] == "run/otel.add"]
    assert len(runs) == len(HOSTILE)
    assert all(s["parent_id"] is None for s in runs)
    assert len({s["trace_id"] for s in runs}) == len(HOSTILE)
    assert "4bf92f3577b34da6a3ce929d0e0e4736" not in {s["trace_id"] for s in runs}


def test_a_failed_publish_ends_its_span_with_the_error(spans: Any, tmp_path: Path) -> None:
    app = Corekit("otel", broker="redis://127.0.0.1:1/0", backend=f"sqlite://{tmp_path}/r.db")
    try:
        with pytest.raises(PublishError):
            app.send_task("otel.add", (1, 2), retry=False)
    finally:
        app.close()
    publish = one(spans(), "apply_async/otel.add")
    assert publish["status"] == "ERROR" and "could not publish" in publish["description"]
    assert publish["events"][0]["attributes"]["exception.type"] == "corekit.exceptions.PublishError"


def test_an_eager_run_is_a_child_of_the_current_span(memory_app: Corekit, spans: Any) -> None:
    @memory_app.task(name="otel.add")
    def add(x: int, y: int) -> int:
        return x + y

    with trace.get_tracer("test").start_as_current_span("caller") as caller:
        assert add.apply((1, 2)).get() == 3
        assert trace.get_current_span() is caller  # the run's context was detached
    run = one(spans(), "run/otel.add")
    assert run["parent_id"] == f"{caller.get_span_context().span_id:016x}"


INACTIVE = '''
import sys
sys.modules["opentelemetry"] = None  # as if it were not installed
from corekit.cli import main
main(["plugins"])
'''


def test_without_opentelemetry_the_plugin_registers_nothing_and_says_why(
        tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", INACTIVE], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    [line] = [line for line in out.stdout.splitlines() if line.startswith("opentelemetry ")]
    assert line.split(None, 3)[3] == ("inactive: the OpenTelemetry API is not installed "
                                      "(pip install 'corekit[opentelemetry]')"), out
    assert "signal receivers" not in line


def test_a_plugin_connecting_to_an_unknown_signal_is_named(tmp_path: Path) -> None:
    from corekit.exceptions import ImproperlyConfigured
    from corekit.hookspecs import hookimpl
    from corekit.pluginmanager import PluginInfo, PluginManager

    class Bad:
        @hookimpl
        def corekit_register_signal_receivers(self) -> dict[str, Any]:
            return {"task_prerunn": print}

    manager = PluginManager(entry_points=[])
    manager.register(Bad(), PluginInfo("bad", "tests.bad"))
    with pytest.raises(ImproperlyConfigured, match="plugin 'bad'.*'task_prerunn'"):
        manager.connect_signal_receivers()


NO_SDK = '''
from corekit import Corekit, signals
app = Corekit("nosdk", broker="memory://nosdk", backend="memory://nosdk")

@app.task(name="nosdk.add")
def add(x, y):
    return x + y

app.send_task("nosdk.add", (1, 2))
names = {getattr(ref(), "__module__", "") for s in (signals.before_task_publish,
         signals.task_prerun) for ref, _ in s.receivers}
print("connected" if "corekit.plugins.opentelemetry.tracing" in names else "none")
'''


def test_a_process_without_an_sdk_connects_no_span_receiver(tmp_path: Path) -> None:
    """Having the OpenTelemetry API installed (as many programs do, through
    other packages) costs a process that traces nothing no signal receiver."""
    out = subprocess.run([sys.executable, "-c", NO_SDK], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"


def test_a_prefork_child_that_sets_its_sdk_up_in_worker_process_init_traces(
        redis_url: str, tmp_path: Path, spans: Any) -> None:
    """OpenTelemetry's advice for forking servers: the SDK in each child, after
    the fork. The parent has none when the worker is set up."""
    (tmp_path / "otel_proj.py").write_text(PROJ.replace(
        "import otel_helpers; otel_helpers.configure()\n",
        "import otel_helpers\nfrom corekit import signals\n"
        "signals.worker_process_init.connect(lambda **_: otel_helpers.configure(), "
        "weak=False)\n"))
    path = tmp_path / "spans-child.jsonl"
    proc = Process(tmp_path, ["corekit", "-A", "otel_proj", "worker", "-P", "prefork", "-c",
                              "1", "-l", "info", "--no-banner"],
                   {"BROKER": redis_url, "BACKEND": redis_url, "OTEL_TEST_SPANS": str(path)})
    proc.wait_for("ready")
    client = Corekit("otel_proj", broker=redis_url, backend=redis_url)
    try:
        with trace.get_tracer("test").start_as_current_span("client"):
            added = client.send_task("otel.add", (2, 3))
        assert added.get(timeout=30) == 5
    finally:
        proc.stop()
        client.close()
    run = one(read_spans(path), "run/otel.add")
    assert run["parent_id"] == one(spans(), "apply_async/otel.add")["span_id"]
