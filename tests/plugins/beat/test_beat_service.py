"""The beat in this process, on real stores: changes while it runs, publish
signals, a skewed clock, bad entries (issue 14)."""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from beat_helpers import wait_until

import corekit.plugins.beat.service as service
from corekit import Corekit, signals
from corekit.plugins.beat.service import Beat
from corekit.schedules.periodic import PeriodicTasks


class Running:
    """A `Beat` on a thread of its own, and the app's store as a test sees it."""

    def __init__(self, app: Corekit) -> None:
        self.app = app
        self.tasks = PeriodicTasks(app)
        self.beat = Beat(app, name="t1")
        self.thread = threading.Thread(target=self.beat.run, daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        wait_until(lambda: self.beat.leader, what="the beat to lead")
        return self

    def __exit__(self, *exc: object) -> None:
        self.beat.stop()
        self.thread.join(10)
        self.beat.store.close()
        self.tasks.close()

    def runs(self, name: str) -> int:
        row = self.tasks.get(name)
        return row.total_run_count if row else 0

    def queued(self, queue: str = "celery") -> list[Any]:
        transport = self.app.connection()
        got: list[Any] = []
        try:
            while batch := transport.fetch([queue], 1000, 0.2):
                got += batch
                transport.ack(batch)
        finally:
            transport.close()
        return got


@pytest.fixture(params=["sqlite", "redis"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Corekit]:
    url = (f"sqlite://{tmp_path / 'broker.db'}" if request.param == "sqlite"
           else request.getfixturevalue("redis_url"))
    app = Corekit("proj", broker=url, backend=url, beat_lease_timeout=1.0)

    @app.task(name="proj.tick")
    def tick() -> None: ...

    yield app
    app.close()


def test_changes_reach_a_running_beat(app: Corekit) -> None:
    app.conf.beat_schedule = {"steady": {"task": "proj.tick", "schedule": 0.2}}
    with Running(app) as beat:
        beat.tasks.add("dyn", "proj.tick", 0.2)
        wait_until(lambda: beat.runs("dyn") >= 2, what="the added entry to fire")

        beat.tasks.disable("dyn")
        frozen = beat.runs("dyn")
        steady = beat.runs("steady")
        wait_until(lambda: beat.runs("steady") >= steady + 5, what="time to pass")
        assert beat.runs("dyn") <= frozen + 1  # one run may have been in flight

        beat.tasks.enable("dyn")
        before = beat.runs("dyn")
        wait_until(lambda: beat.runs("dyn") >= before + 2, what="enabled again")

        beat.tasks.add("dyn", "proj.tick", 3600.0, replace=True)  # now hourly
        before = beat.runs("dyn")
        steady = beat.runs("steady")
        wait_until(lambda: beat.runs("steady") >= steady + 5, what="time to pass")
        assert beat.runs("dyn") <= before + 1

        beat.tasks.remove("dyn")
        beat.tasks.add("other", "proj.tick", 0.2)
        wait_until(lambda: beat.runs("other") >= 2, what="another added entry")
        assert "dyn" not in beat.beat.slots


def test_publish_signals_fire_once_per_run_and_may_change_headers(app: Corekit) -> None:
    seen: list[str] = []
    after: list[str] = []

    def stamp(sender: Any = None, headers: Any = None, **kw: Any) -> None:
        headers["stamped"] = "yes"
        seen.append(headers["id"])

    def published(sender: Any = None, headers: Any = None, **kw: Any) -> None:
        after.append(headers["id"])

    signals.before_task_publish.connect(stamp)
    signals.after_task_publish.connect(published)
    app.conf.beat_schedule = {"e": {"task": "proj.tick", "schedule": 0.1}}
    try:
        with Running(app) as beat:
            wait_until(lambda: beat.runs("e") >= 3, what="runs")
        messages = beat.queued()
    finally:
        signals.before_task_publish.disconnect(stamp)
        signals.after_task_publish.disconnect(published)
    ids = [m.headers["id"] for m in messages]
    assert sorted(ids) == sorted(seen) == sorted(after)
    assert {m.headers.get("stamped") for m in messages} == {"yes"}


def test_a_store_apart_from_the_broker_publishes_through_the_app(tmp_path: Path) -> None:
    app = Corekit("proj", broker=f"sqlite://{tmp_path / 'broker.db'}",
                  beat_store_url=f"sqlite://{tmp_path / 'beat.db'}", beat_lease_timeout=1.0)
    app.conf.beat_schedule = {"e": {"task": "proj.tick", "schedule": 0.1,
                                    "options": {"queue": "hipri", "priority": 3}}}
    try:
        with Running(app) as beat:
            wait_until(lambda: beat.runs("e") >= 3, what="runs")
            assert not beat.tasks.store.unsent_runs()
        messages = beat.queued("hipri")
        assert len(messages) >= 3 and {m.headers["task"] for m in messages} == {"proj.tick"}
    finally:
        app.close()


class SkewedTime:
    """``time`` as a host whose clock is 30 s fast sees it."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def time() -> float:
        return time.time() + 30.0


def test_a_beat_whose_clock_is_30_s_fast_fires_on_the_store_clock(
        app: Corekit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "time", SkewedTime())
    app.conf.beat_schedule = {"e": {"task": "proj.tick", "schedule": 1.0}}
    with Running(app) as beat:
        wait_until(lambda: beat.runs("e") >= 2, what="runs")
        row = beat.tasks.get("e")
        store_now = beat.tasks.store.now()
    assert row is not None and row.last_run_at is not None
    assert row.last_run_at <= store_now  # nothing fired ahead of its time


def test_bad_entries_are_skipped_and_told_once(app: Corekit, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    app.conf.beat_schedule = {
        "good": {"task": "proj.tick", "schedule": 0.1},
        "elsewhere-1": {"task": "other.task", "schedule": 0.1},
        "elsewhere-2": {"task": "other.task", "schedule": 0.1},
    }
    with PeriodicTasks(app) as tasks:  # a row another program wrote wrong
        tasks.store.put("garbage", "{not json", "api")
    caplog.set_level(logging.WARNING, logger="corekit.beat")
    with Running(app) as beat:
        wait_until(lambda: beat.runs("elsewhere-2") >= 3 and beat.runs("good") >= 3,
                   what="runs")
        assert beat.runs("garbage") == 0
        listed = {row.name: row for row in beat.tasks.list()}
    assert listed["garbage"].error and "not JSON" in listed["garbage"].error
    text = [r.getMessage() for r in caplog.records]
    assert sum("garbage" in t for t in text) == 1
    assert sum("other.task" in t for t in text) == 1  # once per task name


def test_hostile_sqlite_row_types_do_not_stop_the_beat(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'broker.db'}"
    app = Corekit("proj", broker=url, backend=url, beat_lease_timeout=1.0)
    app.conf.beat_schedule = {"good": {"task": "proj.tick", "schedule": 0.1}}
    with PeriodicTasks(app) as tasks:
        tasks.sync_config()
        tasks.add("odd", "proj.tick", 0.1)
    db = sqlite3.connect(tmp_path / "broker.db")
    db.execute("UPDATE corekit_beat_entries SET last_run_at = 'soon', total_run_count = NULL "
               "WHERE name = 'odd'")
    db.commit()
    db.close()
    try:
        with Running(app) as beat:
            wait_until(lambda: beat.runs("good") >= 3 and beat.runs("odd") >= 3, what="runs")
    finally:
        app.close()


def test_a_run_claimed_by_a_leader_that_died_before_sending_is_sent_by_the_next(
        tmp_path: Path) -> None:
    """With the store apart from the broker, claim and send are two steps: the
    next leader sends what a dead one claimed, with the same task id, once."""
    from corekit.schedules.store import Run

    app = Corekit("proj", broker=f"sqlite://{tmp_path / 'broker.db'}",
                  beat_store_url=f"sqlite://{tmp_path / 'beat.db'}", beat_lease_timeout=1.0)
    app.conf.beat_schedule = {"e": {"task": "proj.tick", "schedule": 3600.0}}
    try:
        with PeriodicTasks(app) as tasks:
            tasks.sync_config()
            store = tasks.store
            assert store.acquire_lease("dead", 0.5)
            base = store.get("e").changed_at
            run = Run("e", base - 1.0, service.run_task_id("e", base, base - 1.0))
            assert store.claim_runs("dead", [run]) == [run]  # ... and then kill -9
            with Running(app) as beat:  # takes over once the lease lapses
                wait_until(lambda: not tasks.store.unsent_runs(), what="the unsent run sent")
                messages = beat.queued()
        assert [m.headers["id"] for m in messages] == [run.task_id]
    finally:
        app.close()


def test_an_entry_whose_runs_cannot_be_computed_is_skipped_not_an_outage(
        app: Corekit, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A schedule that raises (a bug, data no check foresaw) stops that entry
    only: the leader keeps firing the others and never says the store is away."""
    real = service.due_runs

    def due_runs(sched: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(sched, "seconds", None) == 0.3:
            raise OverflowError("a value no date can show")
        return real(sched, *args, **kwargs)

    monkeypatch.setattr(service, "due_runs", due_runs)
    app.conf.beat_schedule = {"good": {"task": "proj.tick", "schedule": 0.1},
                              "odd": {"task": "proj.tick", "schedule": 0.3}}
    caplog.set_level(logging.WARNING, logger="corekit.beat")
    with Running(app) as beat:
        wait_until(lambda: beat.runs("good") >= 5, what="the good entry firing")
        assert beat.runs("odd") == 0
    text = [r.getMessage() for r in caplog.records]
    assert sum("'odd'" in t and "OverflowError" in t for t in text) == 1
    assert not any("unreachable" in t for t in text)


def test_an_entry_whose_message_cannot_be_built_is_skipped_not_an_outage(
        app: Corekit, caplog: pytest.LogCaptureFixture) -> None:
    """A router that raises for one task: its entry is skipped and told once,
    nothing of it is claimed, the others fire."""
    def router(name: str, args: Any, kwargs: Any, options: Any, task: Any = None,
               **kw: Any) -> Any:
        if name == "proj.broken":
            raise RuntimeError("this router cannot place proj.broken")
        return None

    app.conf.task_routes = (router,)
    app.conf.beat_schedule = {"good": {"task": "proj.tick", "schedule": 0.1},
                              "odd": {"task": "proj.broken", "schedule": 0.1}}
    caplog.set_level(logging.WARNING, logger="corekit.beat")
    with Running(app) as beat:
        wait_until(lambda: beat.runs("good") >= 5, what="the good entry firing")
        assert beat.runs("odd") == 0
    text = [r.getMessage() for r in caplog.records]
    assert sum("'odd'" in t and "cannot place" in t for t in text) == 1, text
    assert not any("unreachable" in t for t in text)
