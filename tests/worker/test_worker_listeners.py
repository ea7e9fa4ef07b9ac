"""`JobListener`: what a worker part following the jobs (events, statistics)
sees of each job, on a real worker."""
from __future__ import annotations

import threading
from typing import Any

import pytest

from corekit import Corekit
from corekit.testing import start_worker
from corekit.messages import Message
from corekit.worker.listeners import JobListener
from corekit.worker.job import Job


class Recorder(JobListener):
    def __init__(self, expected: int) -> None:
        self.seen: list[tuple[str, str, Any]] = []
        self.done = threading.Semaphore(0)
        self.expected = expected

    def received(self, job: Job) -> None:
        self.seen.append(("received", job.headers.task, None))

    def started(self, job: Job) -> None:
        assert job.started_at is not None
        self.seen.append(("started", job.headers.task, None))

    def finished(self, job: Job) -> None:
        state = job.metas[-1]["status"] if job.metas else None
        self.seen.append(("finished", job.headers.task, state))
        self.done.release()

    def rejected(self, message: Message, reason: str) -> None:
        self.seen.append(("rejected", message.headers.get("task"), reason))
        self.done.release()


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_a_listener_follows_each_job_to_its_end(sqlite_app: Corekit, pool: str) -> None:
    app = sqlite_app

    @app.task(ignore_result=True)
    def quiet() -> int:
        return 1

    @app.task
    def broken() -> None:
        raise ValueError("no")

    recorder = Recorder(expected=3)
    with start_worker(app, pool=pool, concurrency=1) as worker:
        worker.consumer.listeners = [*worker.consumer.listeners, recorder]
        unstored = quiet.delay()
        broken.delay()
        app.send_task("nobody.knows.me")
        for _ in range(3):
            assert recorder.done.acquire(timeout=30)
    by_task: dict[str, list[tuple[str, Any]]] = {}
    for event, task, detail in recorder.seen:
        by_task.setdefault(str(task), []).append((event, detail))
    # ignore_result stores nothing, but the listener still learns the outcome
    assert by_task[quiet.name] == [("received", None), ("started", None),
                                   ("finished", "SUCCESS")]
    assert by_task[broken.name] == [("received", None), ("started", None),
                                    ("finished", "FAILURE")]
    [(event, reason)] = by_task["nobody.knows.me"]
    assert event == "rejected" and "not registered" in reason
    assert unstored.state == "PENDING"  # ignore_result: still nothing stored
