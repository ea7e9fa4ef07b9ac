"""Poison messages on RabbitMQ, published with plain py-amqp as a hostile or
foreign producer would: missing or wrong-typed headers, bodies that are not
JSON, properties py-amqp cannot read (not UTF-8), corekit's own delay
headers forged.  Each is dead-lettered with its reason; the messages around
them run and no worker ever stops consuming."""
from __future__ import annotations

import json
import uuid
from typing import Any, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corekit import Corekit
from corekit.messages import task_body, task_headers
from corekit.testing import start_worker

BODY = json.dumps(task_body(["raw"], {})).encode()


def headers(task_id: str, **changes: Any) -> dict[str, Any]:
    h = {k: v for k, v in task_headers("echo", task_id, ["raw"], {}).items() if v is not None}
    h.update(changes)
    return {k: v for k, v in h.items() if v is not ...}


#: (name, amqp.Message keyword arguments made from a task id, what the reason says)
CASES: list[tuple[str, Any, str]] = [
    ("no headers", lambda i: dict(correlation_id=i), "missing 'task' header"),
    ("no id", lambda i: dict(application_headers=headers(i, id=...), correlation_id=i),
     "missing 'id' header"),
    ("task not a string", lambda i: dict(application_headers=headers(i, task=5)),
     "bad 'task' header: 5"),
    ("task bytes", lambda i: dict(application_headers=headers(i, task=b"\xffecho")),
     "bad 'task' header: b'\\xffecho'"),
    ("retries a string", lambda i: dict(application_headers=headers(i, retries="3")),
     "bad 'retries' header: '3'"),
    ("timelimit a table", lambda i: dict(application_headers=headers(i, timelimit={"a": 1})),
     "bad 'timelimit' header"),
    ("eta a number", lambda i: dict(application_headers=headers(i, eta=17)),
     "bad 'eta' header: 17"),
    ("argsrepr huge", lambda i: dict(application_headers=headers(i, argsrepr="a" * 100_000)),
     "bad 'argsrepr' header: a string of 100000 characters"),
    ("body not JSON", lambda i: dict(application_headers=headers(i), body=b"{not json"),
     "cannot decode application/json body"),
    ("no content type", lambda i: dict(application_headers=headers(i), content_type=None),
     "refusing to deserialize content of type ''"),
    ("content type not UTF-8", lambda i: dict(application_headers=headers(i),
                                              content_type=b"application/\xffjson"),
     "AMQP property 'content_type' is not UTF-8"),
    ("correlation id not UTF-8", lambda i: dict(application_headers=headers(i),
                                                correlation_id=b"\xfe\xff"),
     "AMQP property 'correlation_id' is not UTF-8"),
    ("reply_to not UTF-8", lambda i: dict(application_headers=headers(i), reply_to=b"\xc3"),
     "AMQP property 'reply_to' is not UTF-8"),
    ("delay header a string", lambda i: dict(application_headers=headers(
        i, **{"x-corekit-eta": "soon"})), "bad 'x-corekit-eta' header: 'soon'"),
    ("delay header a bool", lambda i: dict(application_headers=headers(
        i, **{"x-corekit-eta": True})), "bad 'x-corekit-eta' header: True"),
    ("route header a number", lambda i: dict(application_headers=headers(
        i, **{"x-corekit-exchange": 5})), "bad 'x-corekit-exchange' header: 5"),
]


@pytest.fixture
def app(amqp_app: Corekit) -> Corekit:
    @amqp_app.task(name="echo")
    def echo(x: Any) -> Any:
        return x

    return amqp_app


@pytest.fixture
def raw_channel(amqp_url: str) -> Iterator[Any]:
    """A plain py-amqp channel on the test's vhost."""
    import kombu

    conn = kombu.Connection(amqp_url)
    conn.ensure_connection(max_retries=3)
    channel = conn.connection.channel()
    yield channel
    conn.close()


def publish_raw(channel: Any, **kw: Any) -> None:
    import amqp

    body = kw.pop("body", BODY)
    kw.setdefault("content_type", "application/json")
    kw.setdefault("content_encoding", "utf-8")
    kw = {k: v for k, v in kw.items() if v is not None}
    channel.basic_publish(amqp.Message(body, delivery_mode=2, **kw), exchange="",
                          routing_key="celery")


def test_poison_is_dead_lettered_and_the_rest_run(app: Corekit, raw_channel: Any,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    before = app.tasks["echo"].delay("before")  # declares the queue as corekit does
    poison = {}
    for name, make, reason in CASES:
        task_id = f"poison-{uuid.uuid4().hex[:8]}"
        publish_raw(raw_channel, **make(task_id))
        poison[task_id] = (name, reason)
    good_id = f"good-{uuid.uuid4().hex[:8]}"
    publish_raw(raw_channel, application_headers=headers(good_id), correlation_id=good_id)
    after = app.tasks["echo"].delay("after")
    with start_worker(app):
        assert before.get(timeout=20) == "before"
        assert app.AsyncResult(good_id).get(timeout=20) == "raw"
        assert after.get(timeout=20) == "after"
    assert not [r for r in caplog.records if "Broker error" in r.getMessage()]
    letters = app.producer.dead_letters(limit=1000)
    assert len(letters) == len(CASES), [d.reason for d in letters]
    reasons = sorted(d.reason for d in letters)
    for name, _, reason in CASES:
        assert any(reason in r for r in reasons), (name, reason, reasons)


# -- reading a content header py-amqp cannot read --------------------------------------------
def _header(props: dict[str, Any]) -> bytes:
    from struct import pack

    from amqp.basic_message import Message

    return pack(">HHQ", 60, 0, 11) + Message(**props)._serialize_properties()


def _read(payload: bytes) -> dict[str, Any]:
    from amqp.basic_message import Message

    message = Message()
    message.inbound_header(payload)
    return dict(message.properties)


short = st.one_of(st.text(max_size=8), st.binary(max_size=8))
SHORT = ["content_type", "content_encoding", "correlation_id", "reply_to", "expiration",
         "message_id", "type", "user_id", "app_id", "cluster_id"]


@settings(max_examples=300, deadline=None)
@given(strings=st.fixed_dictionaries({}, optional={k: short for k in SHORT}),
       others=st.fixed_dictionaries({}, optional={
           "application_headers": st.dictionaries(st.text(max_size=4), st.integers(0, 9),
                                                  max_size=3),
           "delivery_mode": st.integers(1, 2), "priority": st.integers(0, 255),
           "timestamp": st.integers(0, 2**40)}))
def test_fuzz_readable_header(strings: dict[str, Any], others: dict[str, Any]) -> None:
    """Whatever bytes the short strings hold, the frame is read: as it is
    when it reads, else without the unreadable ones and saying which."""
    from corekit.plugins.amqp.frames import UNREADABLE, readable_header

    payload = _header({**strings, **others})
    unreadable = sorted(k for k, v in strings.items()
                        if isinstance(v, bytes) and not _utf8(v))
    fixed = readable_header(payload)
    if not unreadable:
        assert fixed is None
        return
    props = _read(fixed)
    why = props["application_headers"].pop(UNREADABLE)
    assert [k for k in SHORT if f"{k!r} is not UTF-8" in why] == [
        k for k in SHORT if k in unreadable]
    expected = {k: v.decode() if isinstance(v, bytes) else v for k, v in strings.items()
                if k not in unreadable}
    assert {k: props[k] for k in SHORT if k in props} == expected
    for key, value in others.items():
        assert props[key] == value


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
