"""Redis results past the pub/sub output-buffer limit (32 MB by default):
the store announces a large result with a short notice, not the meta, and
the waiter GETs it; a pub/sub connection the server dropped is replaced; a
result over ``result_max_size`` fails its task at store time."""
from __future__ import annotations

import select
import threading
import time
from typing import Any

import pytest
import redis

from corekit import Corekit
from corekit.exceptions import EncodeError
from corekit.testing import start_worker

BIG = 40 * 1024 * 1024


def _when_subscribed(url: str, task_id: str, then: threading.Event) -> threading.Thread:
    """Set *then* once a client listens on the task's channel."""
    def watch() -> None:
        client = redis.Redis.from_url(url)
        channel = f"celery-task-meta-{task_id}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if dict(client.pubsub_numsub(channel)).get(channel.encode()):
                break
            time.sleep(0.01)
        then.set()
        client.close()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_40mb_result_reaches_a_waiting_get(redis_app: Corekit, redis_url: str) -> None:
    go = threading.Event()

    @redis_app.task
    def big() -> str:
        go.wait(30)
        return "x" * BIG

    with start_worker(redis_app):
        result = big.delay()
        _when_subscribed(redis_url, result.id, go)  # so the store publishes to our get()
        value = result.get(timeout=60)
        assert len(value) == BIG
        del value
        again = big.delay()
        assert len(again.get(timeout=60)) == BIG


def test_a_result_over_result_max_size_fails_its_task(redis_app: Corekit) -> None:
    redis_app.conf.result_max_size = 1024 * 1024

    @redis_app.task
    def sized(n: int) -> str:
        return "y" * n

    with start_worker(redis_app):
        with pytest.raises(EncodeError, match=r"over result_max_size \(1048576 bytes\)"):
            sized.delay(2 * 1024 * 1024).get(timeout=10)
        assert sized.delay(10).get(timeout=10) == "y" * 10


def _kill_pubsub(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.execute_command("CLIENT", "KILL", "TYPE", "pubsub"))
    finally:
        client.close()


def test_a_killed_pubsub_connection_is_replaced_between_gets(redis_app: Corekit,
                                                             redis_url: str) -> None:
    @redis_app.task
    def echo(x: Any) -> Any:
        return x

    with start_worker(redis_app):
        assert echo.delay(1).get(timeout=10) == 1
        kept = redis_app.backend._local.pubsub[1].connection._sock
        assert _kill_pubsub(redis_url) >= 1  # the client's kept pub/sub connection
        select.select([kept], [], [], 10)  # its close has reached this end
        assert echo.delay(2).get(timeout=10) == 2
        assert echo.delay(3).get(timeout=10) == 3


def test_a_pubsub_connection_killed_while_waiting_is_replaced(redis_app: Corekit,
                                                              redis_url: str) -> None:
    go = threading.Event()

    @redis_app.task
    def gated() -> str:
        go.wait(30)
        return "done"

    with start_worker(redis_app):
        result = gated.delay()
        subscribed = threading.Event()
        _when_subscribed(redis_url, result.id, subscribed)

        def kill_then_release() -> None:
            subscribed.wait(30)
            _kill_pubsub(redis_url)
            go.set()

        threading.Thread(target=kill_then_release, daemon=True).start()
        assert result.get(timeout=20) == "done"


@pytest.mark.parametrize("noise", [
    b"not json at all", b'"a string"', b'{"no": "status"}',
    b'{"status": "SUCCESS", "result": 1, "task_id": "another-task"}'])
def test_a_foreign_message_on_the_channel_does_not_break_get(
        redis_app: Corekit, redis_url: str, noise: bytes) -> None:
    """Anyone may PUBLISH on a result's channel: the waiter reads the key
    instead of trusting what it heard."""
    go = threading.Event()

    @redis_app.task
    def gated() -> str:
        go.wait(30)
        return "done"

    with start_worker(redis_app):
        result = gated.delay()
        subscribed = threading.Event()
        _when_subscribed(redis_url, result.id, subscribed)

        def publish_then_release() -> None:
            subscribed.wait(30)
            client = redis.Redis.from_url(redis_url)
            client.publish(f"celery-task-meta-{result.id}", noise)
            client.close()
            go.set()

        threading.Thread(target=publish_then_release, daemon=True).start()
        assert result.get(timeout=20) == "done"
