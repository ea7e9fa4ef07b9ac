"""The web monitor's periodic-tasks API against real schedule stores (SQLite,
Redis): the listing with the leader and last outcomes, enable/disable, and
what a user or a hostile page gets wrong."""
from __future__ import annotations

import logging
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from corekit import Corekit
from corekit.monitor.auth import Auth
from corekit.monitor.periodic import MAX_SINGLE_LOOKUPS
from corekit.monitor.server import ROUTE_THREADS, Monitor
from corekit.schedules import crontab
from corekit.schedules.periodic import PeriodicTasks
from corekit.schedules.store import Run
from monitor_helpers import call, wait_until
from servers import RedisServer
from tcp_gate import TcpGate

pytestmark = pytest.mark.timeout(90)

HOSTILE = ["../../etc/passwd", "a/b", "a%2Fb", "<img src=x onerror=alert(1)>", "名前 with space",
           "?x=1#y", "back\\slash", "enable", "x/enable"]


def monitor_of(app: Corekit, **kwargs: Any) -> Monitor:
    return Monitor(app, port=0, inspect_interval=0.5, inspect_timeout=0.2, **kwargs)


def listing(monitor: Monitor, **kwargs: Any) -> dict[str, Any]:
    response = call(monitor.url + "/api/periodic-tasks", **kwargs)
    assert response.status == 200, response.body
    return response.json  # type: ignore[no-any-return]


def rows_by_name(monitor: Monitor) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in listing(monitor)["periodic_tasks"]}


def action(monitor: Monitor, name: str, verb: str, **kwargs: Any) -> Any:
    return call(f"{monitor.url}/api/periodic-tasks/{quote(name, safe='')}/{verb}", "POST",
                kwargs.pop("body", {}), **kwargs)


def is_enabled(app: Corekit, name: str) -> bool:
    with PeriodicTasks(app) as tasks:
        row = tasks.get(name)
    assert row is not None and row.entry is not None
    return row.entry.enabled


def ran(tasks: PeriodicTasks, *names: str) -> dict[str, str]:
    """One run claimed per name, as a beat leader does: name -> task id."""
    assert tasks.store.acquire_lease("beat-test", 30)
    runs = [Run(name, 1.0, uuid.uuid4().hex) for name in names]
    assert tasks.store.claim_runs("beat-test", runs) == runs
    return {run.name: run.task_id for run in runs}


def test_the_listing_shows_entries_the_leader_and_last_outcomes(sqlite_app: Corekit) -> None:
    with PeriodicTasks(sqlite_app) as tasks:
        tasks.add("every-10s", "proj.add", 10.0, args=(1, 2), kwargs={"z": 3})
        tasks.add("nightly", "proj.report", crontab(hour=2, minute=30), tz="Europe/London")
        tasks.add("paused", "proj.add", 60, enabled=False, missed="all")
        tasks.add("pending", "proj.add", 60)
        tasks.store.put("garbage", "{not json", "api")
        with monitor_of(sqlite_app) as monitor:
            first = listing(monitor)
            assert first["leader"] is None
            assert [r["name"] for r in first["periodic_tasks"]] == [
                "every-10s", "garbage", "nightly", "paused", "pending"]
            ids = ran(tasks, "every-10s", "nightly", "pending")
            sqlite_app.backend.store_result(ids["every-10s"], 3, "SUCCESS")
            sqlite_app.backend.store_result(ids["nightly"], ValueError("no"), "FAILURE")
            after = listing(monitor)
            rows = {r["name"]: r for r in after["periodic_tasks"]}
    assert after["leader"]["holder"] == "beat-test" and 0 < after["leader"]["lease_left"] <= 30
    every = rows["every-10s"]
    assert every["task"] == "proj.add" and every["enabled"] is True and every["source"] == "api"
    assert every["schedule"] == "<freq: 0:00:10>" and every["error"] is None
    assert every["args"] == [1, 2] and every["kwargs"] == {"z": 3}
    assert every["last_task_id"] == ids["every-10s"] and every["total_run_count"] == 1
    assert every["last_run_at"] == 1.0 and every["next_run_at"] > 1.0
    assert every["last_outcome"] == "SUCCESS"
    assert rows["nightly"]["last_outcome"] == "FAILURE"
    assert rows["nightly"]["tz"] == "Europe/London" and "30 2" in rows["nightly"]["schedule"]
    assert rows["pending"]["last_outcome"] == "PENDING"  # claimed, no result stored yet
    assert rows["paused"]["enabled"] is False and rows["paused"]["next_run_at"] is None
    assert rows["paused"]["missed"] == "all" and rows["paused"]["last_outcome"] is None
    bad = rows["garbage"]
    assert bad["task"] is None and bad["enabled"] is False and bad["next_run_at"] is None
    assert "garbage" in bad["error"] and "not JSON" in bad["error"]
    assert bad["schedule"].startswith("(bad: ")


def test_enable_and_disable_change_the_store(sqlite_app: Corekit) -> None:
    with PeriodicTasks(sqlite_app) as tasks:
        tasks.add("tick", "proj.add", 5)
        tasks.store.put("garbage", "[]", "api")
    with monitor_of(sqlite_app) as monitor:
        off = action(monitor, "tick", "disable")
        assert off.status == 200 and off.json == {"ok": "periodic task tick disabled",
                                                  "name": "tick", "enabled": False}
        assert is_enabled(sqlite_app, "tick") is False
        assert rows_by_name(monitor)["tick"]["enabled"] is False
        assert action(monitor, "tick", "disable").status == 200  # twice: still disabled
        assert action(monitor, "tick", "enable").status == 200
        assert is_enabled(sqlite_app, "tick") is True
        missing = action(monitor, "tock", "enable")
        assert missing.status == 404
        assert missing.json == {"error": "no periodic task called 'tock'"}
        broken = action(monitor, "garbage", "enable")
        assert broken.status == 409 and "garbage" in broken.json["error"]
        wrong_method = call(f"{monitor.url}/api/periodic-tasks/tick/disable")
        assert wrong_method.status == 405 and "use POST" in wrong_method.json["error"]
        assert call(f"{monitor.url}/api/periodic-tasks", "POST", {}).status == 405
        assert call(f"{monitor.url}/api/periodic-tasks/tick/remove", "POST", {}).status == 404
        no_name = call(f"{monitor.url}/api/periodic-tasks/disable", "POST", {"name": 7})
        assert no_name.status == 400 and "name" in no_name.json["error"]
        not_json = call(f"{monitor.url}/api/periodic-tasks/tick/disable", "POST",
                        raw=b"{", headers={"Content-Type": "application/json"})
        assert not_json.status == 400 and is_enabled(sqlite_app, "tick") is True


def test_hostile_names_reach_their_own_entry_only(sqlite_app: Corekit) -> None:
    with PeriodicTasks(sqlite_app) as tasks:
        for name in [*HOSTILE, ".", "..", "etc"]:
            tasks.add(name, "proj.add", 60, args=["<script>alert(1)</script>"])
    with monitor_of(sqlite_app) as monitor:
        for name in HOSTILE:
            response = action(monitor, name, "disable")
            assert response.status == 200 and response.json["name"] == name, name
        for name in (".", ".."):  # a browser resolves these path segments away: the body form
            response = call(f"{monitor.url}/api/periodic-tasks/disable", "POST", {"name": name})
            assert response.status == 200 and response.json["name"] == name
        rows = rows_by_name(monitor)
        assert {n for n, r in rows.items() if r["enabled"]} == {"etc"}
        assert rows["<img src=x onerror=alert(1)>"]["args"] == ["<script>alert(1)</script>"]
        assert action(monitor, "../etc", "enable").status == 404
        assert action(monitor, "a/b/c", "enable").status == 404
    assert not is_enabled(sqlite_app, "a/b") and is_enabled(sqlite_app, "etc")


def test_auth_and_cross_site_refusals_leave_the_store_alone(sqlite_app: Corekit) -> None:
    with PeriodicTasks(sqlite_app) as tasks:
        tasks.add("tick", "proj.add", 5)
    bearer = {"Authorization": "Bearer tok-en"}
    with monitor_of(sqlite_app, auth=Auth(token="tok-en")) as monitor:
        host = monitor.url.split("//", 1)[1]
        assert call(monitor.url + "/api/periodic-tasks").status == 401
        assert listing(monitor, headers=bearer)["periodic_tasks"][0]["name"] == "tick"
        refusals = [({}, 401), ({**bearer, "Origin": "http://evil.example"}, 403),
                    ({**bearer, "Origin": "null"}, 403),
                    ({**bearer, "Sec-Fetch-Site": "cross-site"}, 403),
                    ({**bearer, "Content-Type": "text/plain"}, 415),
                    ({**bearer, "Host": "evil.example"}, 400)]
        for headers, status in refusals:
            assert action(monitor, "tick", "disable", headers=headers).status == status, headers
            assert is_enabled(sqlite_app, "tick")
        same_page = {**bearer, "Origin": monitor.url, "Sec-Fetch-Site": "same-origin",
                     "Host": host}
        assert action(monitor, "tick", "disable", headers=same_page).status == 200
        assert not is_enabled(sqlite_app, "tick")


def test_a_store_that_is_down_is_a_503_until_it_is_back(tmp_path: Path,
                                                        redis_server: RedisServer) -> None:
    redis_server.flush()
    url = f"sqlite://{tmp_path / 'broker.sqlite3'}"
    with TcpGate(redis_server.port) as gate:
        app = Corekit("tests", broker=url, backend=url,
                      beat_store_url=gate.url("redis://127.0.0.1:{port}/0"))
        try:
            with monitor_of(app) as monitor:
                for _ in range(2):
                    down = call(monitor.url + "/api/periodic-tasks")
                    assert down.status == 503 and "schedule store" in down.json["error"]
                    assert action(monitor, "tick", "disable").status == 503
                gate.open()
                with PeriodicTasks(app) as tasks:
                    tasks.add("tick", "proj.add", 5)
                assert [r["name"] for r in listing(monitor)["periodic_tasks"]] == ["tick"]
                opened = monitor.periodic._tasks
                assert action(monitor, "tick", "disable").status == 200
                assert listing(monitor)["periodic_tasks"][0]["enabled"] is False
                assert monitor.periodic._tasks is opened  # opened once, reused
        finally:
            app.close()


def test_a_store_that_never_answers_holds_one_route_thread(tmp_path: Path) -> None:
    """A listener that never accepts: the kernel completes the handshake and
    the store's client waits for a reply that never comes.  Other requests
    get a 503 after the monitor's wait, and the rest of the API answers."""
    url = f"sqlite://{tmp_path / 'broker.sqlite3'}"
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    app = Corekit("tests", broker=url, backend=url, beat_store_url=f"redis://127.0.0.1:{port}/0")
    try:
        with monitor_of(app) as monitor, ThreadPoolExecutor(1) as pool:
            monitor.periodic.store_wait = 0.5
            stuck = pool.submit(call, monitor.url + "/api/periodic-tasks")
            wait_until(lambda: monitor.periodic._calling.locked(), what="the stuck call")
            for _ in range(ROUTE_THREADS + 2):
                busy = call(monitor.url + "/api/periodic-tasks")
                assert busy.status == 503 and "not answered" in busy.json["error"]
                assert call(monitor.url + "/api/stats").status == 200
            silent.close()  # resets the waiting connection: the stuck call ends
            assert stuck.result(timeout=30).status == 503
    finally:
        silent.close()
        app.close()


def test_no_schedule_store_for_the_broker_is_a_503_naming_the_setting(
        memory_app: Corekit) -> None:
    with monitor_of(memory_app) as monitor:
        response = call(monitor.url + "/api/periodic-tasks")
        assert response.status == 503 and "beat_store_url" in response.json["error"]


def test_a_failing_result_backend_gives_unknown_outcomes(tmp_path: Path, caplog: Any) -> None:
    from servers import free_port

    url = f"sqlite://{tmp_path / 'broker.sqlite3'}"
    app = Corekit("tests", broker=url, backend=f"redis://127.0.0.1:{free_port()}/0")
    try:
        with PeriodicTasks(app) as tasks:
            tasks.add("tick", "proj.add", 5)
            tasks.add("never", "proj.add", 5)
            ran(tasks, "tick")
        with monitor_of(app) as monitor, caplog.at_level(logging.WARNING, "corekit.monitor"):
            for _ in range(3):
                rows = rows_by_name(monitor)
                assert rows["tick"]["last_outcome"] == "unknown"
                assert rows["never"]["last_outcome"] is None
        warned = [r for r in caplog.records if "last outcomes" in r.getMessage()]
        assert len(warned) == 1  # once, not once per refresh
    finally:
        app.close()


def test_a_backend_read_one_id_at_a_time_is_bounded(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'broker.sqlite3'}"
    app = Corekit("tests", broker=url, backend=f"memory://{uuid.uuid4().hex}")
    names = [f"job-{i:03d}" for i in range(MAX_SINGLE_LOOKUPS + 10)]
    try:
        with PeriodicTasks(app) as tasks:
            for name in names:
                tasks.add(name, "proj.add", 60)
            for task_id in ran(tasks, *names).values():
                app.backend.store_result(task_id, 1, "SUCCESS")
        with monitor_of(app) as monitor:
            outcomes = [r["last_outcome"] for r in listing(monitor)["periodic_tasks"]]
    finally:
        app.close()
    assert outcomes.count("SUCCESS") == MAX_SINGLE_LOOKUPS
    assert outcomes.count("unknown") == 10


def test_the_listing_and_toggle_on_redis(redis_app: Corekit) -> None:
    with PeriodicTasks(redis_app) as tasks:
        tasks.add("<b>bold</b>", "proj.add", 5)
        task_id = ran(tasks, "<b>bold</b>")["<b>bold</b>"]
        redis_app.backend.store_result(task_id, 1, "SUCCESS")
    with monitor_of(redis_app) as monitor:
        [row] = listing(monitor)["periodic_tasks"]
        assert row["name"] == "<b>bold</b>" and row["last_outcome"] == "SUCCESS"
        assert listing(monitor)["leader"]["holder"] == "beat-test"
        assert action(monitor, "<b>bold</b>", "disable").status == 200
        assert is_enabled(redis_app, "<b>bold</b>") is False
        assert action(monitor, "<b>nope</b>", "disable").status == 404
