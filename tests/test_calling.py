"""Sending tasks: the protocol v2 message each calling option produces."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from corekit import Corekit
from corekit.exceptions import PluginNotFound
from corekit.messages import Message


def sent(app: Corekit, queue: str = "celery") -> Message:
    """The one message waiting in *queue* (fetched, then given back)."""
    transport = app.connection()
    [message] = transport.fetch([queue], 10, 2.0)
    transport.reject([message], requeue=True)
    return message


def decode(app: Corekit, message: Message) -> Any:
    return app.codecs.decode(message.body, message.content_type,
                             message.headers.get("compression"))


@pytest.fixture
def add(memory_app: Corekit) -> Any:
    @memory_app.task
    def add(x: int, y: int) -> int:
        return x + y
    return add


def test_delay_builds_a_protocol_v2_message(memory_app: Corekit, add: Any) -> None:
    result = add.delay(2, 3)
    message = sent(memory_app)
    h = message.headers
    assert h["lang"] == "py" and h["task"] == add.name and h["id"] == result.id
    assert h["root_id"] == result.id and h["parent_id"] is None
    assert h["retries"] == 0 and h["eta"] is None and h["expires"] is None
    assert h["timelimit"] == [None, None]
    assert h["argsrepr"] == "[2, 3]" and h["kwargsrepr"] == "{}"
    assert "@" in h["origin"] and h["ignore_result"] is False
    assert message.properties["correlation_id"] == result.id
    assert message.properties["delivery_mode"] == 2
    assert message.content_type == "application/json"
    assert message.content_encoding == "utf-8"
    assert decode(memory_app, message) == [[2, 3], {},
                                           {"callbacks": None, "errbacks": None,
                                            "chain": None, "chord": None}]


def test_apply_async_options(memory_app: Corekit, add: Any) -> None:
    eta = datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc)  # due: deliverable now
    result = add.apply_async((1,), {"y": 2}, task_id="my-id", eta=eta, expires=60,
                             queue="hipri", priority=7, serializer="msgpack",
                             compression="zlib", time_limit=10, soft_time_limit=5)
    message = sent(memory_app, "hipri")
    h = message.headers
    assert result.id == "my-id" == h["id"]
    assert datetime.fromisoformat(h["eta"]) == eta
    expires = datetime.fromisoformat(h["expires"])
    assert timedelta(seconds=55) < expires - datetime.now(timezone.utc) <= timedelta(seconds=60)
    assert h["timelimit"] == [10, 5] and h["compression"] == "application/x-gzip"
    assert message.priority == 7 and message.queue == "hipri"
    assert message.content_type == "application/x-msgpack"
    assert message.eta == pytest.approx(eta.timestamp())
    assert decode(memory_app, message)[:2] == [[1], {"y": 2}]


def test_countdown_sets_eta_held_by_the_broker(memory_app: Corekit, add: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    published: list[Message] = []
    producer = memory_app.producer
    real_publish = producer.publish
    monkeypatch.setattr(producer, "publish", lambda msgs: (published.extend(msgs),
                                                           real_publish(msgs)))
    before = datetime.now(timezone.utc)
    add.apply_async((1, 1), countdown=30)
    [message] = published
    eta = datetime.fromisoformat(message.headers["eta"])
    assert timedelta(seconds=29) < eta - before < timedelta(seconds=31)
    assert message.eta == pytest.approx(eta.timestamp())
    assert memory_app.connection().fetch(["celery"], 1, 0.05) == []  # not due: not delivered
    assert memory_app.connection().queue_size("celery") == 1


@pytest.mark.parametrize("compression,mime", [("zlib", "application/x-gzip"),
                                              ("bzip2", "application/x-bz2"),
                                              ("zstd", "application/zstd")])
@pytest.mark.parametrize("serializer", ["json", "msgpack", "pickle"])
def test_every_serializer_and_compression(memory_app: Corekit, add: Any, serializer: str,
                                          compression: str, mime: str) -> None:
    add.apply_async((4, 5), serializer=serializer, compression=compression)
    message = sent(memory_app)
    assert message.headers["compression"] == mime
    assert list(decode(memory_app, message)[:2]) == [[4, 5], {}]


def test_unknown_serializer_or_compression_is_a_clear_error(add: Any) -> None:
    with pytest.raises(PluginNotFound, match="yaml"):
        add.apply_async((1, 2), serializer="yaml")
    with pytest.raises(PluginNotFound, match="lzma"):
        add.apply_async((1, 2), compression="lzma")


def test_send_task_by_name_needs_no_registration(memory_app: Corekit) -> None:
    result = memory_app.send_task("elsewhere.tasks.mul", (2, 3), queue="q")
    message = sent(memory_app, "q")
    assert message.headers["task"] == "elsewhere.tasks.mul"
    assert message.headers["id"] == result.id


def test_default_queue_and_task_queue_option(memory_app: Corekit) -> None:
    memory_app.conf.task_default_queue = "default"

    @memory_app.task(queue="media")
    def encode() -> None:
        pass

    encode.delay()
    assert sent(memory_app, "media").headers["task"] == encode.name
    memory_app.send_task("x")
    assert sent(memory_app, "default").headers["task"] == "x"


def test_unknown_apply_async_option_is_an_error(add: Any) -> None:
    with pytest.raises(TypeError, match="bogus"):
        add.apply_async((1, 2), bogus=True)


def test_apply_runs_eagerly(memory_app: Corekit, add: Any) -> None:
    result = add.apply((2, 2))
    assert result.get() == 4 and result.state == "SUCCESS" and result.successful()


def test_task_always_eager(memory_app: Corekit, add: Any) -> None:
    memory_app.conf.task_always_eager = True
    assert add.delay(20, 22).get() == 42
    assert memory_app.connection().queue_size("celery") == 0


def test_eager_failure_propagates_when_asked(memory_app: Corekit) -> None:
    @memory_app.task
    def boom() -> None:
        raise KeyError("k")

    result = boom.apply()
    assert result.failed() and isinstance(result.result, KeyError)
    with pytest.raises(KeyError):
        result.get()
    with pytest.raises(KeyError):
        boom.apply(throw=True)


def test_eager_results_can_be_stored(memory_app: Corekit, add: Any) -> None:
    memory_app.conf.task_store_eager_result = True
    result = add.apply((1, 2))
    assert memory_app.AsyncResult(result.id).get(timeout=1) == 3


def test_delay_on_commit_without_a_framework_is_a_clear_error(memory_app: Corekit) -> None:
    from corekit.exceptions import ImproperlyConfigured

    @memory_app.task
    def add(x: int, y: int) -> int:
        return x + y

    with pytest.raises(ImproperlyConfigured, match="need Django set up"):
        add.delay_on_commit(1, 2)
    with pytest.raises(ImproperlyConfigured, match="use delay"):
        add.apply_async_on_commit((1, 2))
