"""The worker end to end, in-process, on every transport of this issue."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from corekit import Corekit, states
from corekit.exceptions import MaxRetriesExceededError, RemoteError, TimeoutError
from corekit.testing import start_worker


class CustomError(Exception):
    pass


def test_results_come_back(any_app: Corekit) -> None:
    @any_app.task
    def add(x: int, y: int) -> int:
        return x + y

    with start_worker(any_app, concurrency=4):
        results = [add.delay(i, i) for i in range(50)]
        assert [r.get(timeout=10) for r in results] == [2 * i for i in range(50)]
        assert results[0].state == states.SUCCESS and results[0].ready()


def test_failure_reraises_the_original_type(any_app: Corekit) -> None:
    @any_app.task
    def fail() -> None:
        raise CustomError("custom", 42)

    with start_worker(any_app):
        result = fail.delay()
        with pytest.raises(CustomError) as info:
            result.get(timeout=10)
        assert info.value.args == ("custom", 42)
        assert result.failed() and result.state == states.FAILURE
        assert "CustomError" in result.traceback and "raise CustomError" in result.traceback
        assert isinstance(result.get(timeout=1, propagate=False), CustomError)


def test_unimportable_exception_type_becomes_remote_error(any_app: Corekit) -> None:
    meta = any_app.backend.store_result(
        "x1", None, states.FAILURE, "tb")
    meta["result"] = {"exc_type": "Gone", "exc_message": ["bye"], "exc_module": "no.such.mod"}
    any_app.backend.store_many([meta])
    with pytest.raises(RemoteError, match="no.such.mod.Gone: bye"):
        any_app.AsyncResult("x1").get(timeout=1)


def test_unknown_id_is_pending_and_get_times_out(any_app: Corekit) -> None:
    result = any_app.AsyncResult("never-sent")
    assert result.state == states.PENDING and not result.ready()
    with pytest.raises(TimeoutError):
        result.get(timeout=0.2)


def test_track_started_and_forget(any_app: Corekit) -> None:
    release = threading.Event()

    @any_app.task(track_started=True)
    def slow() -> str:
        release.wait(10)
        return "done"

    with start_worker(any_app):
        result = slow.delay()
        for _ in range(200):
            if result.state == states.STARTED:
                break
            release.wait(0.02)
        assert result.state == states.STARTED
        release.set()
        assert result.get(timeout=10) == "done"
        result.forget()
        assert any_app.AsyncResult(result.id).state == states.PENDING


def test_ignore_result_stores_nothing(any_app: Corekit) -> None:
    done = threading.Event()

    @any_app.task(ignore_result=True)
    def quiet() -> int:
        done.set()
        return 1

    with start_worker(any_app):
        result = quiet.delay()
        assert done.wait(10)
    assert result.state == states.PENDING


def test_retry_runs_again_with_countdown(any_app: Corekit) -> None:
    @any_app.task(bind=True, max_retries=3)
    def flaky(self: Any, succeed_on: int) -> int:
        if self.request.retries + 1 < succeed_on:
            raise self.retry(exc=ConnectionError("not yet"), countdown=0.05)
        return self.request.retries

    with start_worker(any_app):
        assert flaky.delay(3).get(timeout=10) == 2
        failing = flaky.delay(10)
        with pytest.raises(ConnectionError, match="not yet"):
            failing.get(timeout=10)


def test_retry_without_exc_raises_max_retries_exceeded(any_app: Corekit) -> None:
    @any_app.task(bind=True, max_retries=1)
    def again(self: Any) -> None:
        raise self.retry(countdown=0.01)

    with start_worker(any_app):
        with pytest.raises(MaxRetriesExceededError):
            again.delay().get(timeout=10)


def test_autoretry_for_with_backoff(any_app: Corekit) -> None:
    attempts: list[int] = []

    @any_app.task(bind=True, autoretry_for=(KeyError,), max_retries=4, retry_backoff=0.01,
                  retry_jitter=True)
    def shaky(self: Any) -> int:
        attempts.append(self.request.retries)
        if len(attempts) < 3:
            raise KeyError("missing")
        return len(attempts)

    with start_worker(any_app):
        assert shaky.delay().get(timeout=10) == 3
    assert attempts == [0, 1, 2]


def test_expired_task_is_revoked(any_app: Corekit) -> None:
    @any_app.task
    def late() -> int:
        return 1

    result = late.apply_async(expires=0.01)
    threading.Event().wait(0.05)
    with start_worker(any_app):
        with pytest.raises(Exception, match="expired"):
            result.get(timeout=10)
        assert result.state == states.REVOKED


def test_countdown_runs_after_the_delay(any_app: Corekit) -> None:
    import time

    @any_app.task
    def stamp() -> float:
        return time.time()

    with start_worker(any_app):
        sent = time.time()
        assert stamp.apply_async(countdown=0.3).get(timeout=10) >= sent + 0.3


def test_acks_late_acks_after_the_task(any_app: Corekit) -> None:
    inside = threading.Event()
    release = threading.Event()

    @any_app.task(acks_late=True)
    def hold() -> str:
        inside.set()
        release.wait(10)
        return "ok"

    probe = any_app.connection()
    with start_worker(any_app):
        result = hold.delay()
        assert inside.wait(10)
        assert probe.fetch(["celery"], 1, 0.05) == []  # owned by the worker, not lost
        release.set()
        assert result.get(timeout=10) == "ok"


def test_pickle_refused_unless_accepted(any_app: Corekit) -> None:
    @any_app.task
    def echo(x: Any) -> Any:
        return x

    with start_worker(any_app):
        echo.apply_async(({"a": 1},), serializer="pickle")
        echo.delay("after").get(timeout=10)
    letters = any_app.producer.dead_letters()
    assert len(letters) == 1 and "application/x-python-serialize" in letters[0].reason
    any_app.conf.accept_content = ["json", "pickle"]
    any_app.conf.result_accept_content = ["json"]
    with start_worker(any_app):
        assert echo.apply_async(({"a": 1},), serializer="pickle").get(timeout=10) == {"a": 1}


def test_warm_shutdown_requeues_prefetched(any_app: Corekit) -> None:
    started = threading.Event()
    release = threading.Event()

    @any_app.task
    def block(i: int) -> int:
        started.set()
        release.wait(10)
        return i

    results = [block.delay(i) for i in range(6)]
    with start_worker(any_app, concurrency=1, prefetch_multiplier=4) as worker:
        assert started.wait(10)
        worker.stop()
        release.set()
    # the running one finished; the prefetched ones went back to the queue
    assert sum(r.state == states.SUCCESS for r in results) == 1
    assert any_app.connection().queue_size("celery") == 5
    with start_worker(any_app, concurrency=2):
        assert sorted(r.get(timeout=10) for r in results) == list(range(6))


def test_worker_survives_broker_errors(memory_app: Corekit, caplog: Any) -> None:
    import logging

    @memory_app.task
    def ping() -> str:
        return "pong"

    with start_worker(memory_app) as worker:
        transport = worker.transport
        real_fetch = transport.fetch
        failures = [3]
        failed_thrice = threading.Event()

        def flaky_fetch(*args: Any) -> Any:
            if failures[0]:
                failures[0] -= 1
                if not failures[0]:
                    failed_thrice.set()
                raise ConnectionError("broker went away")
            return real_fetch(*args)

        caplog.set_level(logging.DEBUG, logger="corekit.worker")
        transport.fetch = flaky_fetch
        assert failed_thrice.wait(20)
        assert ping.delay().get(timeout=20) == "pong"
    assert failures[0] == 0
    errors = [r for r in caplog.records if "Broker error" in r.message]
    assert len(errors) == 1  # logged once, not once per attempt
    assert any("back after 3 failed" in r.message for r in caplog.records)


def test_acks_that_fail_are_sent_again(memory_app: Corekit, monkeypatch: Any) -> None:
    @memory_app.task
    def one() -> int:
        return 1

    cls = type(memory_app.producer)
    real_ack = cls.ack
    failures = [1]

    def flaky_ack(self: Any, messages: Any) -> None:
        if failures[0]:
            failures[0] -= 1
            raise ConnectionError("broker went away during the ack")
        real_ack(self, messages)

    monkeypatch.setattr(cls, "ack", flaky_ack)
    with start_worker(memory_app) as worker:
        assert [one.delay().get(timeout=10) for _ in range(5)] == [1] * 5
        broker = worker.transport.broker
    assert failures[0] == 0
    assert broker.unacked == {}  # every delivery acked in the end, none left owned


def test_results_are_stored_once_the_backend_is_back(memory_app: Corekit,
                                                     monkeypatch: Any) -> None:
    @memory_app.task
    def two() -> int:
        return 2

    backend_cls = type(memory_app.backend)
    real_set = backend_cls._set_many
    failures = [2]

    def flaky_set(self: Any, items: Any) -> None:
        if failures[0]:
            failures[0] -= 1
            raise ConnectionError("result store restarting")
        real_set(self, items)

    monkeypatch.setattr(backend_cls, "_set_many", flaky_set)
    with start_worker(memory_app):
        assert two.delay().get(timeout=10) == 2
    assert failures[0] == 0


WAIT = 30.0  # upper bound for what must happen; never reached when green


def wait_for_file(path: Path, timeout: float = WAIT) -> None:
    """Poll for *path* (a task in a child process cannot wait on an Event)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_no_task_waits_behind_a_long_one_while_a_slot_is_idle(sqlite_app: Corekit,
                                                               tmp_path: Path,
                                                               pool: str) -> None:
    """``-O fair``, which corekit always is: a pool slot takes a task only
    once it is free, so the short tasks sent after a blocked one all run on
    the other slot meanwhile."""
    started, release = tmp_path / "started", tmp_path / "release"

    @sqlite_app.task
    def long() -> str:
        started.touch()
        wait_for_file(release)
        return "released"

    @sqlite_app.task
    def short(i: int) -> int:
        return i

    with start_worker(sqlite_app, pool=pool, concurrency=2):
        blocked = long.delay()
        shorts = [short.delay(i) for i in range(10)]
        assert [r.get(timeout=WAIT) for r in shorts] == list(range(10))
        wait_for_file(started)
        assert not blocked.ready()
        release.touch()
        assert blocked.get(timeout=WAIT) == "released"


@pytest.fixture(params=["sqlite", "redis"])
def leased_app(request: pytest.FixtureRequest) -> Corekit:
    """A broker that gives an unacked message back once its lease lapses."""
    return request.getfixturevalue(f"{request.param}_app")


def redelivered(app: Corekit) -> list[Any]:
    """What the broker hands out once a stopped worker's leases have lapsed."""
    return app.connection().fetch(["celery"], 10, 2 * app.conf.broker_lease_timeout)


def test_acks_late_failure_is_dead_lettered_without_acks_on_failure(leased_app: Corekit
                                                                    ) -> None:
    app = leased_app
    app.conf.task_acks_on_failure_or_timeout = False

    @app.task(acks_late=True)
    def late() -> None:
        raise CustomError("late", 1)

    @app.task
    def early() -> None:
        raise CustomError("early")

    @app.task(bind=True, acks_late=True)
    def retried(self: Any) -> int:
        if not self.request.retries:
            raise self.retry(countdown=0)
        return self.request.retries

    with start_worker(app, concurrency=2):
        failed, plain = late.delay(), early.delay()
        assert retried.delay().get(timeout=10) == 1
        for result in (failed, plain):
            with pytest.raises(CustomError):
                result.get(timeout=10)
    assert failed.state == states.FAILURE
    [letter] = app.producer.dead_letters()
    assert letter.reason == "task failed: CustomError: ('late', 1)"
    assert letter.message.headers["id"] == failed.id
    assert redelivered(app) == []
    assert app.producer.replay_dead_letters() == 1  # `corekit dlq replay`
    assert app.connection().queue_size("celery") == 1


def test_acks_late_failure_is_acked_by_default(leased_app: Corekit) -> None:
    app = leased_app

    @app.task(acks_late=True)
    def late() -> None:
        raise CustomError("late")

    @app.task(acks_late=True, acks_on_failure_or_timeout=False)
    def kept() -> None:
        raise KeyError("kept")

    with start_worker(app):
        for result in (late.delay(), kept.delay()):
            with pytest.raises((CustomError, KeyError)):
                result.get(timeout=10)
    [letter] = app.producer.dead_letters()  # the task's own option beats the setting
    assert letter.reason == "task failed: KeyError: kept"
    assert redelivered(app) == []
