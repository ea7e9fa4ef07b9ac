"""task_queues, default exchange settings and task_create_missing_queues, on
a transport without exchanges (the kernel routes by exchange and key)."""
from __future__ import annotations

from typing import Any

import pytest
from kombu import Exchange, Queue

from corekit import Corekit
from corekit.queues import QueueNotFound, QueueSpec, Queues, topic_matches

SEEDS_QUEUES = (
    Queue("default", Exchange("default", type="direct"), routing_key="default"),
    Queue("videos", Exchange("media", type="direct"), routing_key="media.video"),
    Queue("images", Exchange("media", type="direct"), routing_key="media.image"),
)


def landed(app: Corekit, send: Any) -> tuple[str, str, str]:
    """(queue, exchange, routing_key) of the message *send* published."""
    send()
    transport = app.connection()
    for queue in ("default", "videos", "images", "celery", "feeds", "logs"):
        got = transport.fetch([queue], 1, 0.0)
        if got:
            transport.ack(got)
            return got[0].queue, got[0].exchange, got[0].routing_key
    raise AssertionError("no message found")


@pytest.fixture
def media_app(memory_app: Corekit) -> Corekit:
    memory_app.conf.update(task_queues=SEEDS_QUEUES, task_default_queue="default",
                           task_default_exchange="default", task_default_routing_key="default")
    return memory_app


def test_the_seeds_example_routes_by_queue_name(media_app: Corekit) -> None:
    send = media_app.send_task
    assert landed(media_app, lambda: send("t")) == ("default", "default", "default")
    assert landed(media_app, lambda: send("t", queue="videos")) == (
        "videos", "media", "media.video")
    assert landed(media_app, lambda: send("t", queue="images")) == (
        "images", "media", "media.image")


def test_exchange_and_routing_key_find_the_bound_queue(media_app: Corekit) -> None:
    send = media_app.send_task
    assert landed(media_app, lambda: send("t", exchange="media", routing_key="media.image")) == (
        "images", "media", "media.image")
    media_app.conf.task_routes = {"t.video": {"exchange": "media", "routing_key": "media.video"}}
    assert landed(media_app, lambda: send("t.video"))[0] == "videos"


def test_topic_and_fanout_bindings(memory_app: Corekit) -> None:
    memory_app.conf.task_queues = [
        Queue("feeds", Exchange("ev", type="topic"), routing_key="feed.#"),
        {"name": "logs", "exchange": "all", "exchange_type": "fanout"}]
    send = memory_app.send_task
    assert landed(memory_app, lambda: send("t", exchange="ev", routing_key="feed.rss.x"))[0] == (
        "feeds")
    assert landed(memory_app, lambda: send("t", exchange="all", routing_key="anything"))[0] == (
        "logs")


def test_missing_queues_are_created_unless_switched_off(media_app: Corekit) -> None:
    assert landed(media_app, lambda: media_app.send_task("t", queue="feeds")) == (
        "feeds", "feeds", "feeds")
    media_app.conf.task_create_missing_queues = False
    with pytest.raises(QueueNotFound, match="'feeds' is not in task_queues"):
        media_app.send_task("t", queue="feeds")
    with pytest.raises(QueueNotFound, match="'nowhere'"):
        media_app.Worker(queues=["nowhere"])


def test_a_worker_consumes_every_declared_queue_by_default(media_app: Corekit) -> None:
    assert media_app.Worker().queues == ["default", "videos", "images"]
    assert media_app.Worker(exclude_queues=["videos"]).queues == ["default", "images"]


def test_declarations_in_every_form_agree() -> None:
    from corekit.config import DEFAULTS

    forms = [
        [Queue("videos", Exchange("media"), routing_key="media.video",
               queue_arguments={"x-max-priority": 10})],
        [{"name": "videos", "exchange": "media", "routing_key": "media.video",
          "arguments": {"x-max-priority": 10}}],
        {"videos": {"exchange": "media", "routing_key": "media.video", "max_priority": 10}},
        [QueueSpec("videos", "media", "direct", "media.video", max_priority=10)],
    ]
    for form in forms:
        spec = Queues({**DEFAULTS, "task_queues": form}).get("videos")
        assert (spec.exchange, spec.exchange_type, spec.routing_key) == (
            "media", "direct", "media.video")
        assert spec.queue_arguments == {"x-max-priority": 10}


def test_bad_declarations_say_what_is_wrong() -> None:
    from corekit.config import DEFAULTS
    from corekit.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="exchange type 'direkt'"):
        Queues({**DEFAULTS, "task_queues": [{"name": "a", "exchange_type": "direkt"}]})
    with pytest.raises(ImproperlyConfigured, match="unknown field"):
        Queues({**DEFAULTS, "task_queues": {"a": {"exchnage": "x"}}})
    with pytest.raises(ImproperlyConfigured, match="list of queues or a mapping"):
        Queues({**DEFAULTS, "task_queues": "a,b"})


@pytest.mark.parametrize("binding,key,expected", [
    ("media.*", "media.video", True), ("media.*", "media.video.hd", False),
    ("media.#", "media", True), ("#", "", True), ("#.log", "a.b.log", True),
    ("a.#.z", "a.z", True), ("a.*.z", "a.z", False), ("*", "", True)])
def test_topic_matching(binding: str, key: str, expected: bool) -> None:
    assert topic_matches(binding, key) is expected
