"""Rate limits per task type, counted with a tolerance (never timed
assertions on speed): per worker, global across workers on the broker,
bounded memory while tasks wait for a token."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from corekit import Corekit
from corekit.exceptions import ImproperlyConfigured
from corekit.testing import start_worker


def most_in_any_second(starts: list[float]) -> int:
    starts = sorted(starts)
    return max(sum(1 for t in starts[i:] if t < s + 1.0) for i, s in enumerate(starts))


def stamping_task(app: Corekit, rate: str, is_global: bool = False) -> tuple[Any, list[float]]:
    starts: list[float] = []
    lock = threading.Lock()

    @app.task(name="proj.limited", rate_limit=rate, rate_limit_global=is_global)
    def limited(i: int) -> int:
        with lock:
            starts.append(time.monotonic())
        return i

    return limited, starts


@pytest.mark.parametrize("app_name", ["sqlite_app", "redis_app"])
def test_a_per_worker_limit_spaces_the_starts(app_name: str,
                                              request: pytest.FixtureRequest) -> None:
    app = request.getfixturevalue(app_name)
    limited, starts = stamping_task(app, "20/s")
    results = [limited.delay(i) for i in range(50)]
    with start_worker(app, pool="threads", concurrency=4):
        assert [r.get(timeout=30) for r in results] == list(range(50))
    assert most_in_any_second(starts) <= 22  # 20 a second, a token of slack at each end
    assert max(starts) - min(starts) >= 2.0  # 50 at 20/s cannot take less than ~2.45 s


@pytest.mark.parametrize("app_name", ["sqlite_app", "redis_app"])
def test_a_global_limit_holds_across_workers(app_name: str,
                                             request: pytest.FixtureRequest) -> None:
    app = request.getfixturevalue(app_name)
    limited, starts = stamping_task(app, "10/s", is_global=True)
    results = [limited.delay(i) for i in range(30)]
    with start_worker(app, pool="threads", concurrency=4), \
            start_worker(app, pool="threads", concurrency=4):
        assert sorted(r.get(timeout=30) for r in results) == list(range(30))
    assert most_in_any_second(starts) <= 12  # 10 a second for both workers together


def test_waiting_tasks_count_against_the_prefetch(memory_app: Corekit) -> None:
    limited, starts = stamping_task(memory_app, "2/s")
    for i in range(100):
        limited.delay(i)
    with start_worker(memory_app, pool="threads", concurrency=2) as worker:
        consumer = worker.consumer
        deadline = time.monotonic() + 10
        while len(starts) < 3:
            assert time.monotonic() < deadline
            held = len(consumer.timer) + consumer.dispatcher.ready_count
            assert held <= consumer.prefetch_limit
            time.sleep(0.05)
        assert worker.transport.queue_size("celery") >= 100 - consumer.prefetch_limit - 3


def test_a_global_limit_on_a_broker_that_cannot_keep_it_fails_at_start(
        amqp_app: Corekit) -> None:
    stamping_task(amqp_app, "10/s", is_global=True)
    worker = amqp_app.Worker(pool="threads", concurrency=1)
    with pytest.raises(ImproperlyConfigured, match="global rate limit.*not amqp://"):
        worker.setup()


def test_rate_limits_can_be_switched_off(memory_app: Corekit) -> None:
    memory_app.conf.worker_disable_rate_limits = True
    limited, starts = stamping_task(memory_app, "1/m")
    results = [limited.delay(i) for i in range(5)]
    with start_worker(memory_app, pool="threads", concurrency=2):
        assert [r.get(timeout=10) for r in results] == list(range(5))


def test_a_bad_rate_fails_where_the_task_is_defined(memory_app: Corekit) -> None:
    with pytest.raises(ValueError, match="'ten/s' is not N/s, N/m or N/h"):
        memory_app.task(rate_limit="ten/s")(lambda: None)
