"""A batch of runs sent twice reaches the workers twice and runs once (issue 14).

With the schedule store apart from the broker (RabbitMQ; or a SQLite broker
with ``beat_store_url`` on another file), the beat claims a batch, publishes
it, then records it sent.  Here the store fails that record once, as a
leader killed at that moment or a store gone away would: the broker has
the batch, the store calls it unsent, and the beat sends it again with a
new send id when it leads again.  The workers' run gate (``take_run``) runs
one send's copies and drops the others.  Everything is real except the one
failed call: a real broker, store, beat and worker.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest
from beat_helpers import wait_until

from corekit import Corekit
from corekit.pluginmanager import default_manager
from corekit.plugins.beat.messages import RUN_HEADER
from corekit.plugins.beat.service import Beat
from corekit.schedules.entry import entry_from_config
from corekit.schedules.store import Run
from corekit.testing import start_worker
from servers import free_port

pytestmark = pytest.mark.slow


def confirm_fails_once(scheme: str, url: str) -> Any:
    """The *scheme* store at *url*, whose first `confirm_runs` fails after
    the broker took the batch (keeping what it failed, in ``failed``)."""
    base = default_manager().get("schedule_stores", scheme)

    class ConfirmFailsOnce(base):  # type: ignore[misc, valid-type]
        failed: list[Run] = []

        def confirm_runs(self, runs: Any) -> None:
            if not self.failed:
                self.failed = list(runs)
                raise ConnectionError("the store went away just after the publish")
            super().confirm_runs(runs)

    return ConfirmFailsOnce(url)


@pytest.fixture(params=["sqlite broker, store in another file", "amqp broker, redis store"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Corekit]:
    if request.param.startswith("sqlite"):
        broker, store = f"sqlite://{tmp_path / 'broker.db'}", f"sqlite://{tmp_path / 'beat.db'}"
    else:
        broker, store = request.getfixturevalue("amqp_url"), request.getfixturevalue("redis_url")
    app = Corekit("resend", broker=broker, backend=f"sqlite://{tmp_path / 'results.db'}",
                  beat_store_url=store, beat_lease_timeout=2.0)
    app.ran = Counter()  # type: ignore[attr-defined]

    @app.task(name="resend.tick", bind=True)
    def tick(self: Any, what: str) -> str:
        app.ran[self.request.id] += 1  # type: ignore[attr-defined]
        return what

    yield app
    app.close()


def test_a_batch_sent_again_runs_once(app: Corekit, caplog: pytest.LogCaptureFixture) -> None:
    scheme = app.conf.beat_store_url.partition(":")[0]
    store = confirm_fails_once(scheme, app.conf.beat_store_url)
    store.put("tick", entry_from_config("tick", {"task": "resend.tick", "schedule": 0.25,
                                                 "args": ["t"]}).to_json())
    caplog.set_level(logging.INFO)
    ran: Counter[str] = app.ran  # type: ignore[attr-defined]
    with start_worker(app, concurrency=2):
        beat = Beat(app, store=store, name="beat-1")
        thread = threading.Thread(target=beat.run, daemon=True)
        thread.start()
        try:
            wait_until(lambda: store.failed and len(store.recent_runs("tick")) >= 8,
                       what="a failed confirm, and runs after it")
        finally:
            beat.stop()
            thread.join(30)
        sent = store.recent_runs("tick", limit=1000)
        assert all(confirmed for _, confirmed in sent)  # the failed batch was sent again
        expected = {run.task_id for run, _ in sent}
        resent = {run.task_id for run in store.failed}
        assert resent and resent <= expected
        copies = len(expected) + len(resent)  # what the broker was given

        def handled() -> int:  # copies run, and copies dropped
            return sum(ran.values()) + caplog.text.count("second copy of periodic task")

        wait_until(lambda: handled() >= copies, what="every copy to be run or dropped")
    assert {task_id: n for task_id, n in ran.items() if n != 1} == {}
    assert set(ran) == expected
    assert caplog.text.count("second copy of periodic task") == len(resent)
    assert f"sending {len(resent)} run(s) a previous leader claimed" in caplog.text
    for task_id in resent:  # dropped copies store nothing: the run's own result stays
        assert app.AsyncResult(task_id).get(timeout=10) == "t"
    store.close()


def test_messages_sent_in_one_transaction_carry_no_run_header(tmp_path: Path) -> None:
    """On the broker's own store there is no second send: the worker asks
    the store nothing (the header is absent)."""
    url = f"sqlite://{tmp_path / 'one.db'}"
    app = Corekit("one", broker=url, backend=url, beat_lease_timeout=2.0)
    beat = Beat(app, name="beat-1")
    beat.store.put("tick", entry_from_config("tick", {"task": "one.tick",
                                                      "schedule": 0.25}).to_json())
    thread = threading.Thread(target=beat.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(beat.store.recent_runs("tick")) >= 2, what="two runs")
    finally:
        beat.stop()
        thread.join(30)
    transport = app.connection()
    messages = transport.fetch(["celery"], 100, 1.0)
    assert len(messages) >= 2
    assert all(RUN_HEADER not in m.headers for m in messages)
    transport.close()
    beat.store.close()
    app.close()


@pytest.fixture
def lone_app(tmp_path: Path) -> Iterator[Corekit]:
    """A worker's app whose schedule store cannot be reached."""
    url = f"sqlite://{tmp_path / 'broker.db'}"
    app = Corekit("lone", broker=url, backend=url,
                  beat_store_url=f"redis://127.0.0.1:{free_port()}/0")
    app.ran = []  # type: ignore[attr-defined]

    @app.task(name="lone.tick")
    def tick(what: str) -> str:
        app.ran.append(what)  # type: ignore[attr-defined]
        return what

    yield app
    app.close()


def test_a_malformed_header_or_a_store_out_of_reach_lets_the_task_run(
        lone_app: Corekit, caplog: pytest.LogCaptureFixture) -> None:
    headers = [{RUN_HEADER: "junk"}, {RUN_HEADER: ["tick", "noon", "send-1"]},
               {RUN_HEADER: ["tick", 10.0, "send-1"]}, {RUN_HEADER: ["tick", 10.0, "send-2"]}]
    with start_worker(lone_app):
        results = [lone_app.send_task("lone.tick", (str(i),), headers=h)
                   for i, h in enumerate(headers)]
        assert [r.get(timeout=30) for r in results] == ["0", "1", "2", "3"]
    assert sorted(lone_app.ran) == ["0", "1", "2", "3"]  # type: ignore[attr-defined]
    assert caplog.text.count(f"malformed {RUN_HEADER} header") == 2
    # told once while the store stays away, not once per message
    assert caplog.text.count("cannot ask the schedule store") == 1
    assert "the task runs" in caplog.text
