"""Beats under faults: a leader paused past its lease, a broker that goes
away and comes back, runs counted on the broker by their ids (issue 14)."""
from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from typing import Iterator

import pytest
from beat_helpers import BeatProject, wait_until
from tcp_gate import TcpGate
from test_beat_replicas import expected_ids, runs_of

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "redis"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BeatProject]:
    broker = (f"sqlite://{tmp_path / 'broker.db'}" if request.param == "sqlite"
              else request.getfixturevalue("redis_url"))
    proj = BeatProject(tmp_path, broker, lease=1.0)
    yield proj
    proj.stop_all()
    proj.app.close()


def assert_each_run_once(project: BeatProject, store: object) -> None:
    expected = expected_ids(store)
    published = project.published_ids()
    assert {i: n for i, n in published.items() if n > 1} == {}
    assert sorted(expected[i] for i in set(expected) - set(published)) == []
    assert set(published) == set(expected)


def test_a_leader_paused_past_its_lease_fires_nothing_twice_when_it_wakes(
        project: BeatProject) -> None:
    store = project.store()
    try:
        project.beat("b1")
        wait_until(lambda: project.leader(store) == "b1", what="b1 leading")
        project.beat("b2")
        wait_until(lambda: runs_of(store, "every-half") >= 2, what="runs")
        project.beats["b1"].send_signal(signal.SIGSTOP)  # paused mid-lease
        wait_until(lambda: project.leader(store) == "b2", what="b2 taking over")
        before = runs_of(store, "every-half")
        wait_until(lambda: runs_of(store, "every-half") >= before + 4, what="b2 firing")
        project.beats["b1"].send_signal(signal.SIGCONT)  # wakes believing it leads
        wait_until(lambda: "lost the lease" in project.log("b1"), what="b1 to see it lost")
        before = runs_of(store, "every-half")
        wait_until(lambda: runs_of(store, "every-half") >= before + 4, what="more runs")
    finally:
        project.stop_all()
    assert project.leader(store) is None  # both let go of it on SIGTERM
    assert_each_run_once(project, store)
    store.close()


def test_a_beat_that_loses_the_broker_says_so_once_and_fires_what_came_due_once(
        tmp_path: Path, redis_server: object) -> None:
    redis_server.flush()  # type: ignore[attr-defined]
    port = redis_server.port  # type: ignore[attr-defined]
    with TcpGate(port) as gate:
        gate.open()
        project = BeatProject(tmp_path, f"redis://127.0.0.1:{gate.port}/0", lease=1.0)
        project.app = type(project.app)("proj", broker=f"redis://127.0.0.1:{port}/0")
        store = project.store()
        try:
            project.beat("b1")
            wait_until(lambda: runs_of(store, "every-second") >= 2, what="runs")
            gate.close()
            wait_until(lambda: "unreachable" in project.log("b1"), what="the outage logged")
            stopped_at = runs_of(store, "every-half")
            time.sleep(2.0)  # the outage itself: runs come due meanwhile
            assert runs_of(store, "every-half") == stopped_at  # nothing reaches the broker
            gate.open()
            wait_until(lambda: "back" in project.log("b1"), what="the return logged")
            wait_until(lambda: runs_of(store, "every-half") >= stopped_at + 6, what="catch-up")
        finally:
            project.stop_all()
        log = project.log("b1")
        assert len(re.findall("unreachable", log)) == 1, log
        assert len(re.findall("is back", log)) == 1, log
        assert "Traceback" not in log, log
        assert_each_run_once(project, store)
        store.close()
        project.app.close()
