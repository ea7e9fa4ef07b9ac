"""Three real beats share one schedule: every run fires exactly once, through
a ``kill -9`` of the leader and a restart (issue 14).

Runs are counted on the broker: each run's task id is derived from its
entry and scheduled time, so the test knows every id that must be there
(one per grid point up to the entry's last run) and sees any duplicate.
On RabbitMQ, where a batch may be sent twice, what the broker got is run
on a worker, which must run each id once; so with the Django database as
the store (``django-db``), apart from the SQLite broker: that case runs in
a pytest of its own with Django set up (tests/contrib/django/
test_django_beat.py sets COREKIT_BEAT_DJANGO to the database file)."""
from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest
from beat_helpers import BeatProject, wait_until

from corekit.plugins.beat.messages import RUN_HEADER
from corekit.plugins.beat.service import run_task_id

pytestmark = pytest.mark.slow

EVERY = {"every-second": 1.0, "every-half": 0.5}


DJANGO_DB = os.environ.get("COREKIT_BEAT_DJANGO")
if DJANGO_DB:
    from django_setup import set_django_up

    set_django_up(DJANGO_DB)


@pytest.fixture(params=["sqlite", "redis", "amqp", pytest.param("django-db", marks=[
    pytest.mark.skipif(not DJANGO_DB, reason="run with Django set up, from tests/contrib/"
                       "django/test_django_beat.py")])])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BeatProject]:
    backend = None
    if request.param == "django-db":  # the store apart from the broker, as on RabbitMQ
        proj = BeatProject(tmp_path, f"sqlite://{tmp_path / 'broker.db'}", lease=2.0,
                           store="django-db", django_db=DJANGO_DB)
        yield proj
        proj.stop_all()
        proj.app.close()
        return
    if request.param == "sqlite":
        broker = f"sqlite://{tmp_path / 'broker.db'}"
    else:
        broker = request.getfixturevalue(f"{request.param}_url")
    if request.param == "amqp":  # RabbitMQ has no store: the SQLite result backend keeps it
        backend = f"sqlite://{tmp_path / 'results.db'}"
    proj = BeatProject(tmp_path, broker, backend, lease=2.0)
    yield proj
    proj.stop_all()
    proj.app.close()


def expected_ids(store: object) -> dict[str, str]:
    """Every run id each entry must have fired, up to its last run."""
    ids = {}
    for stored in store.load()[1]:  # type: ignore[attr-defined]
        every, base = EVERY[stored.name], stored.changed_at
        k = 1
        while base + k * every <= stored.last_run_at:
            ids[run_task_id(stored.name, base, base + k * every)] = f"{stored.name}#{k}"
            k += 1
    return ids


def runs_of(store: object, name: str) -> int:
    stored = store.get(name)  # type: ignore[attr-defined]
    return stored.total_run_count if stored else 0


def test_three_beats_kill_9_and_restart_fire_each_run_once(
        project: BeatProject, request: pytest.FixtureRequest) -> None:
    store = project.store()
    try:
        for name in ("b1", "b2", "b3"):
            project.beat(name)
        first = wait_until(lambda: project.leader(store), what="a leader")
        wait_until(lambda: runs_of(store, "every-second") >= 3, what="three runs")

        project.kill(first)  # kill -9: the lease is left to lapse
        before = runs_of(store, "every-half")
        second = wait_until(lambda: (project.leader(store) or first) != first and
                            project.leader(store), what="a new leader")
        wait_until(lambda: runs_of(store, "every-half") >= before + 6, what="runs after takeover")

        project.kill(second, signal.SIGTERM)  # a clean stop hands over at once
        project.beat("b4")  # and a restart joins in the middle
        wait_until(lambda: project.leader(store) not in (None, first, second),
                   what="a third leader")
        before = runs_of(store, "every-second")
        wait_until(lambda: runs_of(store, "every-second") >= before + 3, what="more runs")
    finally:
        project.stop_all()
    expected = expected_ids(store)
    messages = project.published()
    published = Counter(m.headers["id"] for m in messages)
    duplicates = {i: n for i, n in published.items() if n > 1}
    if request.node.callspec.params["project"] in ("amqp", "django-db"):
        # store and broker apart: claim, send and confirm are three steps, and
        # a kill -9 after a batch's send and before its confirm has the next
        # leader send that batch again; each send is marked with its own id,
        # and the worker runs one send's copies only
        sends = {i: {tuple(m.headers.get(RUN_HEADER) or ()) for m in messages
                     if m.headers["id"] == i} for i in duplicates}
        assert all(len(s) == n for s, n in zip(sends.values(), duplicates.values())), sends
        ran = project.run_on_a_worker(messages)
        assert {expected.get(i, i): n for i, n in ran.items() if n != 1} == {}
        assert set(ran) == set(published)
    else:  # store on the broker: each run is sent once, in one transaction
        assert {expected.get(i, i): n for i, n in duplicates.items()} == {}
    missing = sorted(expected[i] for i in set(expected) - set(published))
    assert missing == []
    assert set(published) == set(expected)
    assert len(expected) >= 20
    store.close()
