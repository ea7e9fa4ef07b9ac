"""Poison in the Redis transport's stored form: an envelope in ``msg`` that
is not one (not msgpack, not a map, a field missing or of the wrong type),
a ``route`` entry that is garbage or missing, an id queued with no envelope.
Each is dead-lettered alone with its reason and its raw bytes; the rest of
its batch runs; recovery and requeues go on."""
from __future__ import annotations

import json
import time
import uuid
from typing import Any, Iterator

import msgpack
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corekit import Corekit
from corekit.messages import build_message, task_body, task_headers
from corekit.pluginmanager import default_manager
from corekit.plugins.redis.transport import pack
from corekit.testing import start_worker
from corekit.messages import Message
from corekit.transport import Transport
from helpers import run_cli

P = "corekit:"
SCORE = 1099511627776  # priority step of a queue's score (publish.lua)


@pytest.fixture
def app(redis_app: Corekit) -> Corekit:
    @redis_app.task(name="echo")
    def echo(x: object = None) -> object:
        return x
    return redis_app


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def task_message(task_id: str, args: list[Any], queue: str = "celery") -> Message:
    headers = task_headers("echo", task_id, args, {})
    return build_message(headers, json.dumps(task_body(args, {})).encode(), "application/json",
                         "utf-8", None, queue=queue)


def envelope(task_id: str, args: list[Any], **changes: Any) -> dict[str, Any]:
    """The fields `pack` writes for ``echo(*args)``, changed (None: left out)."""
    record = msgpack.unpackb(pack(task_message(task_id, args)), raw=False)
    for key, value in changes.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    return record


MISSING = object()


def put(r: redis.Redis, data: bytes | None, route: Any = b"celery\n0", queue: str = "celery",
        eta: float | None = None) -> int:
    """Store a message as a foreign writer would: *data* in ``msg`` (None:
    no envelope), *route* in ``route`` (MISSING: none), queued or delayed."""
    tag = int(r.incr(P + "seq"))
    if data is not None:
        r.hset(P + "msg", str(tag), data)
    if route is not MISSING:
        r.hset(P + "route", str(tag), route)
    if eta is None:
        r.zadd(P + "q:" + queue, {str(tag): 9 * SCORE + tag})
        r.rpush(P + "wake:" + queue, 1)
    else:
        r.zadd(P + "delayed:" + queue, {str(tag): eta})
    return tag


def stored_anywhere(r: redis.Redis, tag: int) -> bool:
    owned = [k for k in r.scan_iter(P + "owned:*") if r.sismember(k, str(tag))]
    return bool(owned or r.hexists(P + "msg", str(tag)) or r.hexists(P + "route", str(tag))
                or r.zscore(P + "q:celery", str(tag)) is not None)


BAD_ENVELOPES = [
    pytest.param(b"\xc1 not msgpack", "msgpack", id="not-msgpack"),
    pytest.param(msgpack.packb([1, 2, 3]), "not a map", id="a-list"),
    pytest.param(msgpack.packb(envelope("x", [1], body=None)), "body", id="no-body"),
    pytest.param(msgpack.packb(envelope("x", [1], headers=None)), "headers", id="no-headers"),
    pytest.param(msgpack.packb(envelope("x", [1], body=7)), "body", id="body-int"),
    pytest.param(msgpack.packb(envelope("x", [1], priority="high")), "priority",
                 id="priority-text"),
    pytest.param(msgpack.packb(envelope("x", [1], queue=[1])), "queue", id="queue-list"),
    pytest.param(msgpack.packb(envelope("x", [1], content_type=b"\xff"), use_bin_type=True),
                 "content_type", id="content-type-bytes"),
    pytest.param(pack(task_message("x", [1])) + b"\x00", "msgpack", id="trailing-bytes"),
    pytest.param(b"\xa3\xff\xfe\xfd", "msgpack", id="str-not-utf8"),
    pytest.param(None, "no envelope", id="missing"),
]


@pytest.mark.parametrize(("data", "named"), BAD_ENVELOPES)
def test_a_bad_envelope_is_dead_lettered_and_its_batch_runs(app: Corekit, r: redis.Redis,
                                                            data: bytes | None,
                                                            named: str) -> None:
    before = app.tasks["echo"].delay("before")
    tag = put(r, data)
    after = app.tasks["echo"].delay("after")
    with start_worker(app):
        assert before.get(timeout=10) == "before"
        assert after.get(timeout=10) == "after"
    assert not stored_anywhere(r, tag)
    [letter] = app.producer.dead_letters()
    assert named in letter.reason
    assert letter.message.body == (data or b"")  # the raw bytes, kept
    assert letter.message.queue == "celery"


def test_a_text_body_is_taken_as_its_utf8_bytes(app: Corekit, r: redis.Redis) -> None:
    record = envelope("text-body", ["héllo"])
    record["body"] = record["body"].decode()
    put(r, msgpack.packb(record))
    with start_worker(app):
        assert app.AsyncResult("text-body").get(timeout=10) == "héllo"
    assert app.producer.dead_letters() == []


def test_raw_letters_are_listed_and_replayed_as_stored(app: Corekit, r: redis.Redis) -> None:
    put(r, b"\x93garbage")
    record = envelope("fixed-later", [5], priority="urgent")
    put(r, msgpack.packb(record))
    with start_worker(app):
        assert app.tasks["echo"].delay("x").get(timeout=10) == "x"
    letters = app.producer.dead_letters()
    assert len(letters) == 2
    listing = run_cli("-b", app.conf.broker_url, "dlq", "list")
    assert listing.returncode == 0, listing.stderr
    assert "msgpack" in listing.stdout and "priority" in listing.stdout
    assert app.producer.replay_dead_letters() == 2
    assert app.producer.dead_letters() == []
    # the replayed envelopes are the stored bytes: an operator may fix one in place
    stored = {t: v for t, v in r.hgetall(P + "msg").items()}
    assert sorted(stored.values()) == sorted(d.message.body for d in letters)
    for t, v in stored.items():
        if v != b"\x93garbage":
            record["priority"] = 0
            r.hset(P + "msg", t, msgpack.packb(record))
    with start_worker(app):
        assert app.AsyncResult("fixed-later").get(timeout=10) == 5
        assert app.tasks["echo"].delay("y").get(timeout=10) == "y"
    [again] = app.producer.dead_letters()
    assert again.message.body == b"\x93garbage"


def transport(url: str, **options: float) -> Transport:
    t: Transport = default_manager().get("transports", "redis")(url, options)
    return t


@pytest.mark.parametrize("route", [b"garbage", b"celery\nx", b"", MISSING],
                         ids=["garbage", "bad-priority", "empty", "missing"])
def test_a_bad_route_neither_blocks_requeue_nor_recovery(redis_url: str, r: redis.Redis,
                                                        route: Any) -> None:
    first = transport(redis_url, lease_timeout=0.5, heartbeat=0.1)
    second = transport(redis_url, lease_timeout=0.5, heartbeat=0.1)
    try:
        tag = put(r, pack(task_message("routed", [1])), route=route)
        [got] = first.fetch(["celery"], 10, 1.0)
        assert got.delivery_tag == tag
        first.reject([got], requeue=True)  # settle.lua reads the route
        [got] = first.fetch(["celery"], 10, 1.0)
        assert got.redelivered
        # first stops heartbeating: recovery (recover.lua) reads the route too
        deadline = time.monotonic() + 10
        back: list[Message] = []
        while not back and time.monotonic() < deadline:
            back = second.fetch(["celery"], 10, 0.2)
        assert [m.delivery_tag for m in back] == [tag]
        second.ack(back)
    finally:
        first.close()
        second.close()


def test_a_due_delayed_message_without_a_route_still_runs(app: Corekit, r: redis.Redis) -> None:
    put(r, pack(task_message("delayed-no-route", ["late"])), route=MISSING,
        eta=time.time() - 1)
    with start_worker(app):
        assert app.AsyncResult("delayed-no-route").get(timeout=10) == "late"


def test_a_queued_id_that_is_not_a_number_is_dead_lettered(app: Corekit,
                                                           r: redis.Redis) -> None:
    r.hset(P + "msg", "abc", pack(task_message("odd-id", [1])))
    r.zadd(P + "q:celery", {"abc": 0})
    r.zadd(P + "delayed:celery", {"def": 0})  # a due delayed one too
    with start_worker(app):
        assert app.tasks["echo"].delay("ok").get(timeout=10) == "ok"
    reasons = [d.reason for d in app.producer.dead_letters()]
    assert len(reasons) == 2 and all("id" in reason for reason in reasons), reasons


# -- fuzzing the stored form ----------------------------------------------------------
ANY = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats()
                   | st.text(max_size=10) | st.binary(max_size=10),
                   lambda inner: st.lists(inner, max_size=3)
                   | st.dictionaries(st.text(max_size=5) | st.integers(-2**63, 2**63 - 1)
                                     | st.binary(max_size=3),
                                     inner, max_size=3), max_leaves=8)
FIELDS = ("headers", "properties", "content_type", "content_encoding", "queue", "exchange",
          "routing_key", "priority", "body")


POP = object()


@st.composite
def stored(draw: st.DrawFn) -> tuple[str, Any, Any]:
    """(kind, what to store, route): kind "fields" is a good envelope with
    some fields changed or left out ({name: value or POP})."""
    kind = draw(st.sampled_from(["fields", "fields", "fields", "bytes", "object", "missing"]))
    route = draw(st.one_of(st.just(b"celery\n0"), st.binary(max_size=12),
                           st.just(MISSING), st.just(b"celery\n99999999999")))
    if kind == "bytes":
        return kind, draw(st.binary(max_size=40)), route
    if kind == "object":
        return kind, msgpack.packb(draw(ANY), use_bin_type=True), route
    if kind == "missing":
        return kind, None, route
    names = draw(st.lists(st.sampled_from(FIELDS), unique=True, max_size=3))
    return kind, {name: draw(st.one_of(st.just(POP), ANY)) for name in names}, route


def test_fuzzed_stored_forms_are_run_or_dead_lettered(app: Corekit, r: redis.Redis) -> None:
    dead = [0]

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(stored())
    def one(form: tuple[str, Any, Any]) -> None:
        kind, data, route = form
        task_id = f"fuzz-{uuid.uuid4().hex}"
        untouched = kind == "fields" and not data
        if kind == "fields":
            record = envelope(task_id, [0])
            for name, value in data.items():
                if value is POP:
                    del record[name]
                else:
                    record[name] = value
            data = msgpack.packb(record, use_bin_type=True)
        before = app.tasks["echo"].delay("before")
        tag = put(r, data, route=route)
        after = app.tasks["echo"].delay("after")
        assert before.get(timeout=10) == "before"
        assert after.get(timeout=10) == "after"
        deadline = time.monotonic() + 10
        while stored_anywhere(r, tag) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not stored_anywhere(r, tag), form
        letters = len(app.producer.dead_letters(10**6))
        ran = app.AsyncResult(task_id).ready()
        while letters == dead[0] and not ran and time.monotonic() < deadline:
            time.sleep(0.01)
            letters = len(app.producer.dead_letters(10**6))
            ran = app.AsyncResult(task_id).ready()
        assert letters == dead[0] + (0 if ran else 1), form
        assert ran or not untouched, form
        if not ran:
            assert app.producer.dead_letters(10**6)[-1].reason
        dead[0] = letters

    with start_worker(app):
        one()
    listing = run_cli("-b", app.conf.broker_url, "dlq", "list", "--limit", "1000")
    assert listing.returncode == 0, listing.stderr


def test_a_flood_of_poison_ahead_of_a_task_holds_nothing_up(app: Corekit,
                                                            r: redis.Redis) -> None:
    for n in range(300):  # whole batches of nothing but poison
        put(r, b"\xc1%d" % n)
    with start_worker(app):
        assert app.tasks["echo"].delay("through").get(timeout=30) == "through"
    assert len(app.producer.dead_letters(1000)) == 300
    assert not list(r.scan_iter(P + "owned:*")) or all(
        r.scard(k) == 0 for k in r.scan_iter(P + "owned:*"))


def test_unreadable_dead_letters_are_listed_not_raised(app: Corekit, r: redis.Redis) -> None:
    r.hset(P + "dead", "7", b"\xc1")
    r.zadd(P + "dead:ids", {"7": 7})
    r.hset(P + "dead", "odd", msgpack.packb({"reason": 1}))
    r.zadd(P + "dead:ids", {"odd": 8})
    letters = app.producer.dead_letters()
    assert [d.id for d in letters] == [7, "odd"]
    assert all("unreadable dead letter" in d.reason for d in letters)
    listing = run_cli("-b", app.conf.broker_url, "dlq", "list")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.count("unreadable dead letter") == 2
