"""Routing on a real RabbitMQ: the seeds' task_queues example, topic and
fanout exchanges, workers bound to some queues, and what a broker refuses."""
from __future__ import annotations

from typing import Any, Iterator

import pytest
from kombu import Exchange, Queue

from corekit import Corekit, PublishError
from corekit.testing import start_worker
from corekit.messages import Message

SEEDS_QUEUES = (
    Queue("default", Exchange("default", type="direct"), routing_key="default"),
    Queue("videos", Exchange("media", type="direct"), routing_key="media.video"),
    Queue("images", Exchange("media", type="direct"), routing_key="media.image"),
)


@pytest.fixture
def app(amqp_app: Corekit) -> Iterator[Corekit]:
    amqp_app.conf.update(task_queues=SEEDS_QUEUES, task_default_queue="default",
                         task_default_exchange="default", task_default_routing_key="default")

    @amqp_app.task(name="proj.encode")
    def encode(name: str) -> str:
        return f"encoded {name}"

    yield amqp_app


def take(app: Corekit, queue: str, timeout: float = 2.0) -> Message | None:
    transport = app.connection()
    try:
        got = transport.fetch([queue], 1, timeout)
        if got:
            transport.ack(got)
        return got[0] if got else None
    finally:
        transport.close()


def test_the_seeds_queues_route_through_their_exchanges(app: Corekit) -> None:
    app.conf.task_routes = {"proj.encode": {"queue": "videos"}}
    app.send_task("proj.encode", ("a",))
    app.send_task("proj.other")
    app.send_task("proj.thumb", exchange="media", routing_key="media.image")
    video, default, image = take(app, "videos"), take(app, "default"), take(app, "images")
    assert video is not None and (video.exchange, video.routing_key) == ("media", "media.video")
    assert default is not None and (default.exchange, default.routing_key) == (
        "default", "default")
    assert image is not None and image.headers["task"] == "proj.thumb"


def test_a_worker_on_one_queue_runs_only_that_queue(app: Corekit) -> None:
    app.conf.task_routes = {"proj.encode": {"queue": "videos"}}
    with start_worker(app, queues=["videos"], pool="threads", concurrency=2):
        assert app.tasks["proj.encode"].delay("clip").get(timeout=10) == "encoded clip"
        app.send_task("proj.encode", ("still",), queue="images")
        assert take(app, "images") is not None  # nobody consumed images


def test_topic_exchange_routes_by_pattern(amqp_app: Corekit) -> None:
    amqp_app.conf.task_queues = [
        Queue("feeds", Exchange("events", type="topic"), routing_key="feed.#"),
        Queue("audit", Exchange("events", type="topic"), routing_key="*.audit")]
    amqp_app.send_task("t.rss", exchange="events", routing_key="feed.rss.fetch")
    amqp_app.send_task("t.audit", exchange="events", routing_key="user.audit")
    feed, audit = take(amqp_app, "feeds"), take(amqp_app, "audit")
    assert feed is not None and feed.headers["task"] == "t.rss"
    assert audit is not None and audit.headers["task"] == "t.audit"


def test_fanout_exchange_copies_to_every_bound_queue(amqp_app: Corekit) -> None:
    amqp_app.conf.task_queues = [Queue(name, Exchange("everyone", type="fanout"))
                                 for name in ("left", "right")]
    transport = amqp_app.connection()
    for name in ("left", "right"):  # consuming declares the queue and its binding
        assert transport.fetch([name], 1, 0.05) == []
    transport.close()
    amqp_app.send_task("t.hello", queue="left")  # to the exchange: both bound queues get it
    left, right = take(amqp_app, "left"), take(amqp_app, "right")
    assert left is not None and right is not None
    assert left.headers["id"] == right.headers["id"]


def test_an_unroutable_message_is_an_error_not_a_loss(amqp_app: Corekit) -> None:
    amqp_app.conf.task_queues = [Queue("only", Exchange("strict"), routing_key="yes")]
    with pytest.raises(PublishError, match="unroutable.*'strict'.*'no'"):
        amqp_app.send_task("t.x", queue="only", routing_key="no", retry=False)


def test_missing_queues_are_declared_on_demand(amqp_app: Corekit) -> None:
    @amqp_app.task(name="proj.echo")
    def echo(x: Any) -> Any:
        return x

    with start_worker(amqp_app, queues=["made.on.demand"], pool="threads", concurrency=1):
        assert echo.apply_async((7,), queue="made.on.demand").get(timeout=10) == 7


def test_priorities_on_a_queue_with_x_max_priority(amqp_app: Corekit) -> None:
    for i, priority in enumerate([0, 5, 9, 1]):
        amqp_app.send_task("t.p", (i,), priority=priority)
    transport = amqp_app.connection()
    order = []
    for _ in range(4):
        [m] = transport.fetch(["celery"], 1, 2.0)
        order.append(m.priority)
        transport.ack([m])
    transport.close()
    assert order == [9, 5, 1, 0]
