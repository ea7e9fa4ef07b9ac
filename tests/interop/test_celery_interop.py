"""Celery and corekit on one RabbitMQ and one Redis: a Celery client's tasks
run on a corekit worker, and Celery reads the results corekit stored (the
wire is Celery's protocol v2; results are in Celery's Redis layout)."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import pytest

from corekit import Corekit
from corekit.testing import start_worker

celery = pytest.importorskip("celery", reason="celery is a test dependency (pip install -e '.[test]')")


@pytest.fixture
def shared(amqp_url: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[Corekit, object]]:
    """A corekit app and a Celery app on the same broker and result store,
    with Celery's default topology (no x-max-priority on the queue)."""
    ours = Corekit("proj", broker=amqp_url, backend=redis_url)

    @ours.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    @ours.task(name="proj.fail")
    def fail() -> None:
        raise KeyError("missing")

    theirs = celery.Celery("proj", broker=amqp_url, backend=redis_url)
    yield ours, theirs
    ours.close()
    theirs.close()


def test_a_celery_client_runs_tasks_on_a_corekit_worker(shared: tuple[Corekit, object]) -> None:
    ours, theirs = shared
    with start_worker(ours, pool="threads", concurrency=2):
        result = theirs.send_task("proj.add", (2, 2))  # type: ignore[attr-defined]
        assert result.get(timeout=10) == 4
        results = [theirs.send_task("proj.add", (i, i), countdown=0.2)  # type: ignore[attr-defined]
                   for i in range(5)]
        assert [r.get(timeout=10) for r in results] == [0, 2, 4, 6, 8]
        failed = theirs.send_task("proj.fail")  # type: ignore[attr-defined]
        with pytest.raises(KeyError):
            failed.get(timeout=10)


def test_celery_reads_what_a_corekit_client_sent_and_stored(shared: tuple[Corekit, object]
                                                            ) -> None:
    ours, theirs = shared
    with start_worker(ours, pool="threads", concurrency=1):
        task_id = ours.tasks["proj.add"].delay(20, 22).id
        assert theirs.AsyncResult(task_id).get(timeout=10) == 42  # type: ignore[attr-defined]


def test_a_celery_clients_chain_group_and_link_run_on_a_corekit_worker(
        shared: tuple[Corekit, object]) -> None:
    """Celery's canvas on the wire: the chain's rest in the message body
    (reversed), callbacks as signature dicts, the group id in the headers."""
    ours, theirs = shared
    add = theirs.signature  # type: ignore[attr-defined]
    with start_worker(ours, pool="threads", concurrency=2):
        chained = celery.chain(add("proj.add", (1, 2)), add("proj.add", (3,)),
                               add("proj.add", (4,)))()
        assert chained.get(timeout=10) == 10 and chained.parent.get(timeout=10) == 6
        linked = add("proj.add", (5, 5)).apply_async(link=add("proj.add", (1,)))
        assert linked.get(timeout=10) == 10
        children = theirs.AsyncResult(linked.id).children  # type: ignore[attr-defined]
        assert [c.get(timeout=10) for c in children] == [11]  # our meta's children, read by Celery
        grouped = celery.group(add("proj.add", (i, i)) for i in range(5))()
        assert grouped.get(timeout=10) == [0, 2, 4, 6, 8]


def test_a_celery_clients_chord_fails_clearly_on_corekit_workers(
        shared: tuple[Corekit, object]) -> None:
    """Celery joins chords on Redis its own way (the size and the parts'
    results under keys of its own, the group not saved, no chord_size in
    the body): corekit's join cannot, and the body fails with a ChordError
    that says so, rather than hanging."""
    ours, theirs = shared
    add = theirs.signature  # type: ignore[attr-defined]
    with start_worker(ours, pool="threads", concurrency=2):
        result = celery.chord([add("proj.add", (1, 1)), add("proj.add", (2, 2))],
                              add("proj.add", (0,)))()
        with pytest.raises(Exception, match="cannot be joined here|group result is gone") as info:
            result.get(timeout=10)
        assert type(info.value).__name__ == "ChordError"


CELERY_PROJ = '''
import os
from celery import Celery
app = Celery("proj", broker=os.environ["BROKER"], backend=os.environ["BACKEND"])

@app.task(name="proj.add")
def add(x, y):
    return x + y
'''


def test_a_celery_worker_runs_what_a_corekit_client_sends(shared: tuple[Corekit, object],
                                                          amqp_url: str, redis_url: str,
                                                          tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    ours, _ = shared
    (tmp_path / "celery_proj.py").write_text(CELERY_PROJ)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_proj", "worker", "--pool", "solo",
         "-l", "info", "--without-mingle", "--without-gossip", "--without-heartbeat"],
        cwd=tmp_path, env={**os.environ, "BROKER": amqp_url, "BACKEND": redis_url},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        add = ours.send_task
        now, later = add("proj.add", (1, 2)), add("proj.add", (3, 4), countdown=0.5)
        assert now.get(timeout=30) == 3  # corekit reads Celery's stored result too
        assert later.get(timeout=30) == 7  # through corekit's delay ladder, then Celery
        # a periodic run's message sent in two steps: Celery ignores the run header
        run = add("proj.add", (2, 2), headers={"corekit_beat_run": ["tick", 10.0, "send-1"]})
        assert run.get(timeout=30) == 4
        from corekit import chain, group

        sig = ours.signature
        chained = chain(sig("proj.add", (1, 2)), sig("proj.add", (3,)), sig("proj.add", (4,)))()
        assert chained.get(timeout=30) == 10 and chained.parent.get(timeout=30) == 6
        linked = sig("proj.add", (5, 5)).apply_async(link=sig("proj.add", (1,)))
        assert linked.get(timeout=30) == 10
        assert [c.get(timeout=30) for c in linked.children] == [11]  # Celery's meta's children
        assert group(sig("proj.add", (i, i)) for i in range(5))().get(timeout=30) == [0, 2, 4, 6, 8]
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0]
    assert "succeeded" in output, output


def test_celery_reads_a_revoked_and_an_expired_result_corekit_stored(
        redis_url: str, shared: tuple[Corekit, object]) -> None:
    """REVOKED is stored as Celery stores it (a TaskRevokedError exception
    meta with the reason), so Celery's AsyncResult and Flower read it."""
    import json

    import redis

    from corekit import TaskRevokedError

    ours, theirs = shared
    revoked, expired = ours.send_task("proj.add", (1, 1)), ours.send_task(
        "proj.add", (2, 2), expires=0.01)
    revoked.revoke()
    threading.Event().wait(0.05)
    with start_worker(ours, pool="threads", concurrency=1):
        for result, reason in ((revoked, "revoked"), (expired, "expired")):
            with pytest.raises(TaskRevokedError, match=reason):
                result.get(timeout=10)
            stored = json.loads(redis.Redis.from_url(redis_url).get(
                f"celery-task-meta-{result.id}"))
            assert stored["status"] == "REVOKED"
            assert stored["result"] == {"exc_type": "TaskRevokedError",
                                        "exc_message": [reason],
                                        "exc_module": "celery.exceptions"}
            theirs_result = theirs.AsyncResult(result.id)  # type: ignore[attr-defined]
            assert theirs_result.state == "REVOKED"
            assert isinstance(theirs_result.result, celery.exceptions.TaskRevokedError)
            with pytest.raises(celery.exceptions.TaskRevokedError, match=reason):
                theirs_result.get(timeout=10)


def test_celery_reads_an_unencodable_result_as_kombus_encode_error(
        shared: tuple[Corekit, object]) -> None:
    """A result JSON cannot encode fails its task as Celery fails it."""
    import kombu.exceptions

    ours, theirs = shared

    @ours.task(name="proj.opaque")
    def opaque() -> object:
        return object()

    with start_worker(ours, pool="threads", concurrency=1):
        result = theirs.send_task("proj.opaque")  # type: ignore[attr-defined]
        with pytest.raises(kombu.exceptions.EncodeError, match="type object"):
            result.get(timeout=10)
        assert result.state == "FAILURE"
