"""Poison messages from a hostile producer: every field the worker reads is
checked when the batch is decoded (both twins alike), a message with a bad
one is dead-lettered with a reason naming it, and the rest of its batch
runs.  What still goes wrong later, in a pool, ends as a stored FAILURE,
never as a silent ack."""
from __future__ import annotations

import json
import pickle
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corekit import Corekit
from corekit._speedups.decode import MAX_NAME, MAX_REPR
from corekit.exceptions import ContentDisallowed, DecodeError
from corekit.messages import build_message, task_body, task_headers
from corekit.testing import start_worker
from corekit.messages import Message
from corekit.worker.job import Job, TaskOptions
from corekit.worker.result_writer import ResultWriter

from helpers import CYTHON, IMPLS, PYTHON, needs_both

GOOD = task_headers("echo", "good-id", [1], {}, group_id="g", group_index=0)


USUAL = object()


def message(headers: Any = USUAL, properties: Any = USUAL,
            content_type: Any = "application/json", body: Any = b"[[1],{},{}]") -> Message:
    return Message(body=body, headers=dict(GOOD) if headers is USUAL else headers,
                   properties={"reply_to": "", "correlation_id": "good-id"}
                   if properties is USUAL else properties, content_type=content_type)


BAD = [
    (message(properties="oops"), "properties are not a dict: str"),
    (message(properties=[("reply_to", "q")]), "properties are not a dict: list"),
    (message(properties=7), "properties are not a dict: int"),
    (message(properties=None), "properties are not a dict: NoneType"),
    (message(properties={"reply_to": 5}), "bad 'reply_to' property: 5"),
    (message(properties={"reply_to": ["q"]}), "bad 'reply_to' property: ['q']"),
    (message(properties={"reply_to": "q" * (MAX_NAME + 1)}),
     f"bad 'reply_to' property: a string of {MAX_NAME + 1} characters (at most {MAX_NAME})"),
    (message({**GOOD, "group_index": "0"}), "bad 'group_index' header: '0'"),
    (message({**GOOD, "group_index": True}), "bad 'group_index' header: True"),
    (message({**GOOD, "group_index": -1}), "bad 'group_index' header: -1"),
    (message({**GOOD, "group_index": 2.0}), "bad 'group_index' header: 2.0"),
    (message({**GOOD, "origin": ["host"]}), "bad 'origin' header: ['host']"),
    (message({**GOOD, "argsrepr": 5}), "bad 'argsrepr' header: 5"),
    (message({**GOOD, "kwargsrepr": {"a": 1}}), "bad 'kwargsrepr' header: {'a': 1}"),
    (message({**GOOD, "argsrepr": "x" * (MAX_REPR + 1)}),
     f"bad 'argsrepr' header: a string of {MAX_REPR + 1} characters (at most {MAX_REPR})"),
    (message({**GOOD, "kwargsrepr": "x" * 5_000_000}),
     f"bad 'kwargsrepr' header: a string of 5000000 characters (at most {MAX_REPR})"),
    *[(message({**GOOD, key: "k" * (MAX_NAME + 1)}),
       f"bad {key!r} header: a string of {MAX_NAME + 1} characters (at most {MAX_NAME})")
      for key in ("task", "id", "root_id", "parent_id", "group", "compression", "origin")],
    (message(content_type="a/" + "b" * MAX_NAME),
     f"bad content type: a string of {MAX_NAME + 2} characters (at most {MAX_NAME})"),
    (message({**GOOD, "timelimit": [1e300, None]}), "bad 'timelimit' header: [1e+300, None]"),
    (message({**GOOD, "timelimit": [None, 10**18]}), f"bad 'timelimit' header: [None, {10**18}]"),
    (message({**GOOD, "timelimit": [2**31 + 1, 5]}), f"bad 'timelimit' header: [{2**31 + 1}, 5]"),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bad_message, reason", BAD, ids=[r[:60] for _, r in BAD])
def test_a_bad_field_is_rejected_with_its_name(impl: Any, bad_message: Message,
                                               reason: str) -> None:
    good = message()
    decoded, bad = impl.decode_batch([good, bad_message, good])
    assert [h.message for h in decoded] == [good, good]
    assert bad == [(bad_message, reason)]


@pytest.mark.parametrize("impl", IMPLS)
def test_the_limits_themselves_are_accepted(impl: Any) -> None:
    headers = {**GOOD, "id": "i" * MAX_NAME, "task": "t" * MAX_NAME, "origin": "o" * MAX_NAME,
               "argsrepr": "a" * MAX_REPR, "kwargsrepr": "k" * MAX_REPR, "group_index": 2**63 - 1,
               "timelimit": [2**31, 2.0**31]}
    [h], bad = impl.decode_batch([message(headers, {"reply_to": "r" * MAX_NAME})])
    assert bad == [] and h.id == "i" * MAX_NAME
    assert h.time_limit == h.soft_time_limit == 2.0**31
    [h], bad = impl.decode_batch([message({"task": "t", "id": "i"}, {})])
    assert bad == [] and (h.task, h.id) == ("t", "i")


# -- fuzzing the decoder ---------------------------------------------------------------------
scalar = st.one_of(st.none(), st.booleans(), st.integers(-2, 3), st.sampled_from([2**63, 10**30]),
                   st.floats(), st.text(max_size=5), st.binary(max_size=3),
                   st.sampled_from(["x" * (MAX_NAME + 1), "2026-01-01T00:00:00Z", "celery"]))
value = st.one_of(scalar, st.lists(scalar, max_size=3), st.tuples(scalar, scalar),
                  st.dictionaries(st.text(max_size=3), scalar, max_size=2))
HEADER_KEYS = sorted({*GOOD, "shadow", "lang", "stamped_headers"})
headers = st.one_of(
    st.builds(lambda changes: {**GOOD, **changes},
              st.dictionaries(st.sampled_from(HEADER_KEYS), value, max_size=3)),
    st.fixed_dictionaries({}, optional={k: value for k in HEADER_KEYS}),
    value)
properties = st.one_of(
    st.builds(lambda changes: {"correlation_id": "c", "reply_to": "", **changes},
              st.dictionaries(st.sampled_from(["reply_to", "correlation_id", "priority",
                                               "delivery_mode"]), value, max_size=2)),
    value)
messages = st.builds(message, headers, properties,
                     st.one_of(st.just("application/json"), scalar), st.binary(max_size=20))


def _summary(impl: Any, batch: list[Message]) -> Any:
    good, bad = impl.decode_batch(batch)
    return ([(id(h.message), h.task, h.id, h.retries, h.eta, h.expires, h.time_limit,
              h.soft_time_limit, h.root_id, h.parent_id, h.group, h.ignore_result, h.compression)
             for h in good], [(id(m), reason) for m, reason in bad])


@pytest.fixture(scope="module")
def echo_app() -> Any:
    app = Corekit("fuzz", broker="memory://fuzz-decode", backend="memory://fuzz-decode")

    @app.task(name="echo")
    def echo(x: Any = None) -> Any:
        return x

    yield app
    app.close()


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(batch=st.lists(messages, max_size=6), at=st.integers(0, 6))
def test_fuzz_decode_batch(impl: Any, echo_app: Corekit, batch: list[Message], at: int) -> None:
    """Never raises; every message is good or bad with a reason; a good
    message beside them decodes as it does alone; and every field the
    worker then reads from a good one is usable (the request a task sees,
    the call a prefork child gets)."""
    anchor = message()
    batch.insert(min(at, len(batch)), anchor)
    good, bad = impl.decode_batch(batch)
    assert len(good) + len(bad) == len(batch)
    assert all(type(reason) is str and reason for _, reason in bad)
    [alone], _ = impl.decode_batch([anchor])
    [beside] = [h for h in good if h.message is anchor]
    assert _summary(impl, [beside.message]) == _summary(impl, [alone.message])
    writer = ResultWriter(echo_app.backend)
    task = echo_app.tasks["echo"]
    for h in good:
        job = Job(h, task, TaskOptions(task), ([1], {}, {}), "host", writer, lambda *a: None)
        pickle.loads(pickle.dumps(job.call()))
        job.request()


@needs_both
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(batch=st.lists(messages, max_size=6))
def test_fuzz_the_twins_agree(batch: list[Message]) -> None:
    assert _summary(CYTHON, batch) == _summary(PYTHON, batch)


# -- on a real broker ------------------------------------------------------------------------
def publish(app: Corekit, name: str, *, headers: dict[str, Any] | None = None,
            properties: Any = None) -> str:
    task_id = f"{name}-{uuid.uuid4().hex[:8]}"
    h = task_headers("echo", task_id, [name], {})
    h.update(headers or {})
    m = build_message(h, json.dumps(task_body([name], {})).encode(), "application/json",
                      "utf-8", None, queue="celery")
    if properties is not None:
        m.properties = properties
    app.producer.publish([m])
    return str(h["id"])


HOSTILE: list[tuple[str, dict[str, Any], str]] = [
    ("props-str", {"properties": "oops"}, "properties are not a dict: str"),
    ("props-list", {"properties": [1, 2]}, "properties are not a dict: list"),
    ("props-num", {"properties": 42}, "properties are not a dict: int"),
    ("reply-to-int", {"properties": {"reply_to": 5, "correlation_id": "x"}},
     "bad 'reply_to' property: 5"),
    ("group-index-str", {"headers": {"group_index": "x"}}, "bad 'group_index' header"),
    ("origin-list", {"headers": {"origin": [1]}}, "bad 'origin' header"),
    ("argsrepr-huge", {"headers": {"argsrepr": "x" * 3_000_000}}, "bad 'argsrepr' header"),
    ("kwargsrepr-int", {"headers": {"kwargsrepr": 3}}, "bad 'kwargsrepr' header"),
    ("retries-str", {"headers": {"retries": "3"}}, "bad 'retries' header"),
    ("timelimit-num", {"headers": {"timelimit": 3}}, "bad 'timelimit' header"),
    ("eta-num", {"headers": {"eta": 1.5}}, "bad 'eta' header"),
    ("id-long", {"headers": {"id": "i" * 100_000}}, "bad 'id' header"),
]


@pytest.fixture(params=["sqlite", "redis"])
def broker_app(request: pytest.FixtureRequest) -> Corekit:
    app: Corekit = request.getfixturevalue(f"{request.param}_app")

    @app.task(name="echo")
    def echo(x: Any = None) -> Any:
        return x

    return app


def test_hostile_messages_are_dead_lettered_and_the_rest_run(
        broker_app: Corekit, caplog: pytest.LogCaptureFixture) -> None:
    app = broker_app
    good = [publish(app, f"good{i}") for i in range(3)]
    hostile = {publish(app, name, **change): reason for name, change, reason in HOSTILE}
    good += [publish(app, f"after{i}") for i in range(3)]
    with start_worker(app):
        for task_id in good:
            assert app.AsyncResult(task_id).get(timeout=15) == task_id.rsplit("-", 1)[0]
    letters = {d.message.headers.get("id"): d.reason for d in app.producer.dead_letters(1000)}
    assert len(letters) == len(hostile)
    logged = [r.getMessage() for r in caplog.records if "dead-letter queue" in r.getMessage()]
    assert len(logged) == len(hostile)
    assert max(map(len, logged)) < 500  # a 100,000-character id is not logged whole
    for task_id, reason in hostile.items():
        assert reason in letters.get(task_id, "<not dead-lettered>"), task_id[:40]
        if len(task_id) < 100:
            assert app.AsyncResult(task_id).state == "PENDING"


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_huge_time_limit_is_dead_lettered(sqlite_app: Corekit, pool: str) -> None:
    """A time limit of 1e300 s (or of a month) once wedged the prefork
    pool's supervisor (OverflowError computing its wait, every turn) with
    every task behind it; limits over 2**31 s are dead-lettered, and the
    supervisor waits at most an hour at once."""
    app = sqlite_app

    @app.task(name="echo")
    def echo(x: Any = None) -> Any:
        return x

    huge = [publish(app, f"huge{i}", headers={"timelimit": limits})
            for i, limits in enumerate([[1e300, None], [None, 1e300], [1e18, 1e18]])]
    fine = [publish(app, f"fine{i}", headers={"timelimit": limits})
            for i, limits in enumerate([[60, 30], [2**31, 2**31], [None, 2.0**31]])]
    with start_worker(app, pool=pool, concurrency=1):
        for task_id in fine:
            assert app.AsyncResult(task_id).get(timeout=20) == task_id.rsplit("-", 1)[0]
    letters = {d.message.headers["id"]: d.reason for d in app.producer.dead_letters()}
    assert set(letters) == set(huge)
    assert all("bad 'timelimit' header" in r for r in letters.values())


# -- what goes wrong later, in the pool ----------------------------------------------------
@pytest.mark.parametrize("pool", ["solo", "threads", "asyncio", "prefork"])
def test_an_error_building_the_request_stores_a_failure(sqlite_app: Corekit, pool: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A corekit bug that breaks a job when the pool starts it (as bad
    properties once did) ends as FAILURE, never as a silent ack."""
    app = sqlite_app

    @app.task(name="echo")
    def echo(x: Any = None) -> Any:
        return x

    real = Job.request_fields

    def broken(self: Job) -> dict[str, Any]:
        if self.id.startswith("doomed"):
            raise AttributeError("'str' object has no attribute 'get'")
        return real(self)

    monkeypatch.setattr(Job, "request_fields", broken)
    doomed = publish(app, "doomed")
    fine = publish(app, "fine")
    with start_worker(app, pool=pool, concurrency=1):
        assert app.AsyncResult(fine).get(timeout=30) == "fine"
        result = app.AsyncResult(doomed)
        with pytest.raises(AttributeError, match="no attribute 'get'"):
            result.get(timeout=30)
        assert result.state == "FAILURE"


# -- fuzzing the body decode ------------------------------------------------------------------
def _mangled(data: bytes, cuts: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for at, byte in cuts:
        if out:
            out[at % len(out)] = byte
    return bytes(out)


@st.composite
def bodies(draw: Any) -> tuple[bytes, str | None]:
    """A body and its compression header: garbage, or real compressed JSON
    and msgpack with some bytes changed."""
    compression = draw(st.sampled_from([None, "application/x-gzip", "application/x-bz2",
                                        "application/zstd", "zlib", "application/bogus"]))
    if draw(st.booleans()):
        return draw(st.binary(max_size=80)), compression
    from corekit.pluginmanager import default_manager

    registry = default_manager().registry("compressors")
    plain = json.dumps(draw(st.recursive(st.none() | st.integers() | st.text(max_size=5),
                                         lambda xs: st.lists(xs, max_size=3), max_leaves=8))
                       ).encode() * draw(st.integers(1, 400))
    codec = next((c for c in registry.values() if compression in (c.content_type, c.name)),
                 None)
    body = codec.compress(plain) if codec else plain
    cuts = draw(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=3))
    return _mangled(body, cuts), compression


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies(), content_type=st.sampled_from(["application/json", "application/x-msgpack",
                                                     "application/x-python-serialize", ""]))
def test_fuzz_body_decode(echo_app: Corekit, body: tuple[bytes, str | None],
                          content_type: str) -> None:
    """Whatever the body, decoding it gives a value or a DecodeError /
    ContentDisallowed with a reason (what the consumer dead-letters), never
    anything else, and never more than the limit."""
    codecs = echo_app.codecs
    accept = codecs.accepted_types(["json", "msgpack"])
    data, compression = body
    try:
        codecs.decode(data, content_type, compression, accept, max_size=4096)
    except (DecodeError, ContentDisallowed) as exc:
        assert str(exc)


FAULTY_PROJ = '''
import os
from corekit import Corekit
from corekit.worker.job import Job

app = Corekit("proj", broker=os.environ["TEST_BROKER"], backend=os.environ["TEST_BROKER"])

@app.task(name="echo")
def echo(x=None):
    return x

_real = Job.request_fields

def _broken(self):
    if self.id.startswith("doomed"):
        raise AttributeError("'str' object has no attribute 'get'")
    return _real(self)

Job.request_fields = _broken  # a corekit bug, injected into this worker process
'''


@pytest.mark.slow
def test_an_error_building_the_request_stores_a_failure_on_eventlet(tmp_path: Any) -> None:
    """The same on the eventlet pool, which needs a monkey-patched process
    of its own."""
    import subprocess
    import sys

    pytest.importorskip("eventlet")
    (tmp_path / "proj.py").write_text(FAULTY_PROJ)
    url = f"sqlite://{tmp_path / 'broker.sqlite3'}"
    app = Corekit("client", broker=url, backend=url)
    doomed, fine = app.send_task("echo", ["doomed"], task_id="doomed-1"), app.send_task(
        "echo", ["fine"])
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen([sys.executable, "-m", "corekit", "-A", "proj", "worker", "-P",
                               "eventlet", "-c", "2", "-l", "info", "--no-banner"],
                              cwd=tmp_path, env={**__import__("os").environ, "TEST_BROKER": url},
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        assert fine.get(timeout=60) == "fine"
        with pytest.raises(AttributeError, match="no attribute 'get'"):
            doomed.get(timeout=30)
        assert doomed.state == "FAILURE"
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()
        app.close()
