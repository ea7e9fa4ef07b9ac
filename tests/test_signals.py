"""Signals for user code: who sends what, with which arguments, and that a
raising receiver harms nothing."""
from __future__ import annotations

import threading
import time
from typing import Any, Iterator

import pytest

from corekit import Corekit, signals
from corekit.testing import start_worker


class Recorder:
    """Connects to signals for one test and records what arrives."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.connected: list[tuple[signals.Signal, Any]] = []

    def listen(self, *sigs: signals.Signal, sender: Any = None) -> None:
        for sig in sigs:
            def receiver(sig: signals.Signal = sig, **kwargs: Any) -> None:
                with self.lock:
                    self.seen.append((sig.name, kwargs))
            sig.connect(receiver, sender=sender, weak=False)
            self.connected.append((sig, receiver))

    def names(self) -> list[str]:
        with self.lock:
            return [name for name, _ in self.seen]

    def get(self, name: str) -> dict[str, Any]:
        with self.lock:
            return next(kwargs for n, kwargs in self.seen if n == name)

    def close(self) -> None:
        for sig, receiver in self.connected:
            sig.disconnect(receiver)


@pytest.fixture
def rec() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.close()


def wait_for(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_task_run_sends_received_prerun_success_postrun(sqlite_app: Corekit,
                                                          rec: Recorder) -> None:
    @sqlite_app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    rec.listen(signals.before_task_publish, signals.after_task_publish, signals.task_received,
               signals.task_prerun, signals.task_success, signals.task_postrun,
               signals.worker_init, signals.worker_ready, signals.worker_shutdown)
    with start_worker(sqlite_app, pool="threads", concurrency=1) as worker:
        result = add.delay(2, 3)
        assert result.get(timeout=10) == 5
        wait_for(lambda: "task_postrun" in rec.names())
    wait_for(lambda: "worker_shutdown" in rec.names())
    names = rec.names()
    order = ["before_task_publish", "after_task_publish", "task_received", "task_prerun",
             "task_success", "task_postrun"]
    assert [n for n in names if n in order] == order
    assert names.index("worker_init") < names.index("worker_ready") < names.index("task_received")
    assert rec.get("before_task_publish")["headers"]["id"] == result.id
    assert rec.get("task_received")["request"].id == result.id
    assert rec.get("task_prerun")["args"] == [2, 3] and rec.get("task_prerun")["task"] is add
    assert rec.get("task_success")["result"] == 5
    assert rec.get("task_postrun")["state"] == "SUCCESS"
    assert rec.get("worker_ready")["sender"] is worker


def test_failure_and_retry_signals(memory_app: Corekit, rec: Recorder) -> None:
    @memory_app.task(name="proj.boom")
    def boom() -> None:
        raise KeyError("nope")

    @memory_app.task(name="proj.flaky", bind=True, max_retries=1, default_retry_delay=0)
    def flaky(self: Any) -> str:
        if self.request.retries == 0:
            raise self.retry(exc=ValueError("again"))
        return "ok"

    rec.listen(signals.task_failure, signals.task_retry)
    with start_worker(memory_app, pool="threads", concurrency=1):
        with pytest.raises(KeyError):
            boom.delay().get(timeout=10)
        assert flaky.delay().get(timeout=10) == "ok"
    failure = rec.get("task_failure")
    assert isinstance(failure["exception"], KeyError) and "KeyError" in failure["traceback"]
    assert isinstance(rec.get("task_retry")["reason"], ValueError)


def test_sender_filter_and_a_raising_receiver(memory_app: Corekit, rec: Recorder) -> None:
    @memory_app.task(name="proj.one")
    def one() -> int:
        return 1

    @memory_app.task(name="proj.two")
    def two() -> int:
        return 2

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    signals.task_prerun.connect(broken, weak=False)
    try:
        rec.listen(signals.task_success, sender="proj.two")
        assert one.apply().get() == 1 and two.apply().get() == 2  # the bug harms nothing
    finally:
        signals.task_prerun.disconnect(broken)
    assert [kw["result"] for _, kw in rec.seen] == [2]


def test_an_expired_task_sends_task_revoked(memory_app: Corekit, rec: Recorder) -> None:
    @memory_app.task(name="proj.late")
    def late() -> None:
        pass

    rec.listen(signals.task_revoked)
    result = late.apply_async(expires=-1)
    with start_worker(memory_app, pool="threads", concurrency=1):
        wait_for(lambda: result.state == "REVOKED")
        wait_for(lambda: "task_revoked" in rec.names())
    assert rec.get("task_revoked")["expired"] is True
    assert rec.get("task_revoked")["request"].id == result.id


def test_weak_receivers_go_away_with_their_owner(rec: Recorder) -> None:
    sig = signals.Signal("test_only")
    calls: list[int] = []

    class Owner:
        def on(self, **kwargs: Any) -> None:
            calls.append(1)

    owner = Owner()
    sig.connect(owner.on)
    sig.send(None)
    del owner
    sig.send(None)
    assert calls == [1] and sig.receivers == []
