"""A publisher retries per retry_policy; retry=False fails at once, clearly."""
from __future__ import annotations

import time
from typing import Any

import pytest

from corekit import Corekit, PublishError
from servers import free_port


@pytest.fixture(params=["redis://:secret@127.0.0.1:{port}/0",
                        "amqp://guest:secret@127.0.0.1:{port}//"], ids=["redis", "amqp"])
def dead_broker_app(request: pytest.FixtureRequest) -> Corekit:
    """A broker URL where nothing listens, with a password to be masked."""
    return Corekit("proj", broker=request.param.format(port=free_port()),
                   backend="memory://dead-broker")


def test_retry_false_fails_at_once(dead_broker_app: Corekit) -> None:
    start = time.monotonic()
    with pytest.raises(PublishError) as info:
        dead_broker_app.send_task("proj.add", (1, 2), retry=False)
    assert time.monotonic() - start < 2
    text = str(info.value)
    assert "after 1 attempt(s)" in text and "secret" not in text and ":**@127.0.0.1" in text


def test_retry_policy_bounds_the_attempts(dead_broker_app: Corekit) -> None:
    policy = {"max_retries": 2, "interval_start": 0.05, "interval_step": 0.05,
              "interval_max": 0.1}
    start = time.monotonic()
    with pytest.raises(PublishError, match="after 3 attempt"):
        dead_broker_app.send_task("proj.add", (1, 2), retry_policy=policy)
    assert time.monotonic() - start >= 0.15  # 0.05 + 0.1 between the three tries


def test_a_retried_publish_goes_through(memory_app: Corekit, monkeypatch: Any) -> None:
    @memory_app.task
    def add(x: int, y: int) -> int:
        return x + y

    cls = type(memory_app.producer)
    real = cls.publish
    failures = [2]

    def flaky(self, messages):  # type: ignore[no-untyped-def]
        if failures[0]:
            failures[0] -= 1
            raise ConnectionError("broker restarting")
        return real(self, messages)

    monkeypatch.setattr(cls, "publish", flaky)
    add.apply_async((1, 2), retry_policy={"interval_start": 0.01})
    assert failures[0] == 0
    assert memory_app.connection().queue_size("celery") == 1
