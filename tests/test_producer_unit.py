"""The producer on memory:// (no servers): what it routes where, what it
publishes, how it retries a failing broker and what it refuses to send."""
from __future__ import annotations

from typing import Any

import pytest

from corekit import Corekit, PublishError
from corekit.exceptions import MalformedSignature


@pytest.fixture
def app() -> Corekit:
    import uuid

    name = uuid.uuid4().hex
    app = Corekit("proj", broker=f"memory://:secret@{name}", backend=f"memory://{name}")
    yield app
    app.close()


@pytest.fixture
def publishes(app: Corekit, monkeypatch: Any) -> list[Any]:
    """Each producer publish call: its messages, or the error it raised
    (a `ConnectionError` for each entry of ``failures`` still > 0)."""
    calls: list[Any] = []
    cls = type(app.producer)
    real = cls.publish

    def publish(self: Any, messages: Any) -> None:
        if calls and calls[0] == "fail" and calls.count("failed") < calls.count("fail"):
            calls.append("failed")
            raise ConnectionError("broker restarting")
        calls.append(list(messages))
        real(self, messages)

    monkeypatch.setattr(cls, "publish", publish)
    return calls


def in_queue(app: Corekit, queue: str) -> int:
    return app.connection().queue_size(queue)


def test_prepare_routes_without_publishing(app: Corekit, publishes: list[Any]) -> None:
    app.conf.task_routes = {"proj.media.*": {"queue": "media", "priority": 3}}
    message = app.prepare_task("proj.media.resize", (1,), {"w": 2})
    assert message.queue == "media" and message.priority == 3
    assert message.routing_key == "media"
    assert publishes == [] and in_queue(app, "media") == 0


def test_explicit_queue_beats_the_routes(app: Corekit) -> None:
    app.conf.task_routes = {"proj.*": "routed"}
    assert app.prepare_task("proj.add", queue="explicit").queue == "explicit"
    assert app.prepare_task("proj.add").queue == "routed"
    assert app.prepare_task("other.add").queue == "celery"


def test_a_routing_key_on_the_default_exchange_names_the_queue(app: Corekit) -> None:
    message = app.prepare_task("proj.add", routing_key="fast")
    assert message.queue == "fast" and message.routing_key == "fast"


def test_an_exchange_and_key_find_the_bound_queue(app: Corekit) -> None:
    app.conf.task_queues = [{"name": "celery"},
                            {"name": "videos", "exchange": "media", "exchange_type": "topic",
                             "routing_key": "video.#"}]
    message = app.prepare_task("proj.encode", exchange="media", routing_key="video.hd")
    assert message.queue == "videos" and message.exchange == "media"
    assert message.routing_key == "video.hd"


def test_a_batch_is_one_publish(app: Corekit, publishes: list[Any]) -> None:
    messages = [app.prepare_task("proj.add", (n, n)) for n in range(5)]
    app.publish_tasks(messages)
    assert len(publishes) == 1 and len(publishes[0]) == 5
    assert in_queue(app, "celery") == 5
    app.publish_tasks([])
    assert len(publishes) == 1  # nothing to send: no round trip


def test_send_task_publishes_what_prepare_makes(app: Corekit, publishes: list[Any]) -> None:
    result = app.send_task("proj.add", (1, 2), countdown=10, expires=60, retries=2)
    (message,), = publishes
    h = message.headers
    assert h["id"] == result.id and h["task"] == "proj.add" and h["retries"] == 2
    assert h["eta"] is not None and h["expires"] is not None
    assert message.eta is not None  # the broker holds it until due


def test_a_failing_publish_is_retried_on_a_new_connection(app: Corekit,
                                                          publishes: list[Any]) -> None:
    publishes.extend(["fail", "fail"])
    first = app.producer
    app.send_task("proj.add", (1, 2), retry_policy={"interval_start": 0})
    assert publishes.count("failed") == 2
    assert app.producer is not first  # each failure closed the connection
    assert in_queue(app, "celery") == 1


def test_retries_end_in_a_clear_error(app: Corekit, publishes: list[Any]) -> None:
    publishes.extend(["fail"] * 5)
    policy = {"max_retries": 2, "interval_start": 0, "interval_step": 0}
    with pytest.raises(PublishError) as info:
        app.send_task("proj.add", (1, 2), retry_policy=policy)
    text = str(info.value)
    assert "after 3 attempt(s)" in text and "1 message(s)" in text
    assert "secret" not in text and "ConnectionError" in text
    assert in_queue(app, "celery") == 0


@pytest.mark.parametrize("how", ["argument", "setting"])
def test_retry_off_is_one_attempt(app: Corekit, publishes: list[Any], how: str) -> None:
    publishes.extend(["fail"] * 3)
    options: dict[str, Any] = {"retry": False} if how == "argument" else {}
    if how == "setting":
        app.conf.task_publish_retry = False
    with pytest.raises(PublishError, match="after 1 attempt"):
        app.send_task("proj.add", (1, 2), **options)
    assert publishes.count("failed") == 1


@pytest.mark.parametrize("call, error, text", [
    (lambda app: app.send_task("proj.add", queue_name="x"), TypeError, "queue_name"),
    (lambda app: app.send_task("", (1,)), MalformedSignature, "non-empty string"),
    (lambda app: app.send_task(None), MalformedSignature, "task name"),
    (lambda app: app.send_task("proj.add", link="proj.mul"), MalformedSignature, "link"),
    (lambda app: app.send_task("proj.add", link_error=[{"task": 3}]), MalformedSignature,
     "link_error"),
    (lambda app: app.send_task("proj.add", serializer="yaml"), Exception, "yaml"),
], ids=["unknown-option", "empty-name", "no-name", "link-string", "bad-errback",
        "unknown-serializer"])
def test_what_it_refuses_it_does_not_send(app: Corekit, publishes: list[Any], call: Any,
                                          error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        call(app)
    assert publishes == [] and in_queue(app, "celery") == 0
