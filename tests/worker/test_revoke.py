"""revoke: kept for workers that start later, heard at once by running ones,
by id or by stamped header, terminate on the pools that can; expires checked
on receipt and again before running."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from corekit import Corekit, TaskRevokedError
from corekit.testing import start_worker


def wait_until(predicate: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def ran_log(app: Corekit, tmp_path: Path) -> tuple[Any, Path]:
    log = tmp_path / "ran.log"

    @app.task(name="proj.note")
    def note(word: str) -> str:
        with open(log, "a") as f:
            f.write(word + "\n")
        return word

    return note, log


def runs(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


@pytest.mark.parametrize("app_name", ["sqlite_app", "redis_app", "amqp_app"])
def test_a_revoke_made_before_the_worker_started_is_honoured(
        app_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    app = request.getfixturevalue(app_name)
    note, log = ran_log(app, tmp_path)
    doomed, kept = note.delay("doomed"), note.delay("kept")
    doomed.revoke()
    with start_worker(app, pool="threads", concurrency=2):
        assert kept.get(timeout=15) == "kept"
        with pytest.raises(TaskRevokedError, match="revoked"):
            doomed.get(timeout=15)
    assert runs(log) == ["kept"]


@pytest.mark.parametrize("app_name", ["sqlite_app", "redis_app", "amqp_app"])
def test_a_running_worker_hears_a_revoke_at_once(app_name: str,
                                                 request: pytest.FixtureRequest,
                                                 tmp_path: Path) -> None:
    app = request.getfixturevalue(app_name)
    note, log = ran_log(app, tmp_path)
    gate = threading.Event()

    @app.task(name="proj.block")
    def block() -> str:
        gate.wait(30)
        return "unblocked"

    with start_worker(app, pool="threads", concurrency=1) as worker:
        blocker = block.delay()
        wait_until(lambda: blocker.id in worker.consumer.running)
        queued = note.delay("queued")  # waits behind the blocker
        wait_until(lambda: worker.consumer.dispatcher.ready_count == 1)
        # a revoke kept in the backend only would not be seen by this worker:
        # it must come through the broadcast
        app.control.broadcast("revoke", {"task_id": queued.id})
        wait_until(lambda: worker.consumer.revoked.reason(queued.id, {}) is not None)
        gate.set()
        assert blocker.get(timeout=15) == "unblocked"
        with pytest.raises(TaskRevokedError):
            queued.get(timeout=15)
    assert runs(log) == []


def test_revoke_by_stamped_header(redis_app: Corekit, tmp_path: Path) -> None:
    note, log = ran_log(redis_app, tmp_path)
    b1 = [note.apply_async((f"b1-{i}",), headers={"batch": "b1"}) for i in range(3)]
    b2 = note.apply_async(("b2",), headers={"batch": "b2"})
    redis_app.control.revoke_by_stamped_headers({"batch": ["b1", "b9"]})
    with start_worker(redis_app, pool="threads", concurrency=2):
        assert b2.get(timeout=15) == "b2"
        for result in b1:
            with pytest.raises(TaskRevokedError):
                result.get(timeout=15)
    assert runs(log) == ["b2"]


def test_terminate_kills_a_running_task_on_prefork(sqlite_app: Corekit,
                                                   tmp_path: Path) -> None:
    started = tmp_path / "started"

    @sqlite_app.task(name="proj.forever")
    def forever() -> None:
        started.write_text("yes")
        time.sleep(120)

    note, _ = ran_log(sqlite_app, tmp_path)
    with start_worker(sqlite_app, pool="prefork", concurrency=1):
        result = forever.delay()
        wait_until(started.exists)
        result.revoke(terminate=True, signal="SIGKILL")
        with pytest.raises(TaskRevokedError, match="terminated"):
            result.get(timeout=15)
        assert note.delay("after").get(timeout=15) == "after"  # a new child serves


def test_terminate_cancels_a_coroutine_on_asyncio(redis_app: Corekit) -> None:
    import asyncio

    running = threading.Event()

    @redis_app.task(name="proj.waits")
    async def waits() -> None:
        running.set()
        await asyncio.sleep(120)

    with start_worker(redis_app, pool="asyncio", concurrency=4):
        result = waits.delay()
        assert running.wait(15)
        redis_app.control.terminate(result.id)
        with pytest.raises(TaskRevokedError, match="terminated"):
            result.get(timeout=15)


def test_expired_tasks_are_revoked_on_receipt(sqlite_app: Corekit, tmp_path: Path) -> None:
    note, log = ran_log(sqlite_app, tmp_path)
    sent = time.monotonic()
    stale = note.apply_async(("stale",), expires=0.2)
    fresh = note.apply_async(("fresh",), expires=60)
    wait_until(lambda: time.monotonic() - sent > 0.3)  # stale has expired in the queue
    with start_worker(sqlite_app, pool="threads", concurrency=1):
        assert fresh.get(timeout=15) == "fresh"
        with pytest.raises(TaskRevokedError, match="expired"):
            stale.get(timeout=15)
    assert runs(log) == ["fresh"]
