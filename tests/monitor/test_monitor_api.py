"""The web monitor's JSON API, auth and /metrics against a real worker
sending events, on SQLite and Redis."""
from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from corekit import Corekit
from corekit.monitor.auth import Auth, AuthConfigError, parse_basic_auth
from corekit.monitor.metrics import TaskMetrics, render
from corekit.monitor.series import RateSeries
from corekit.monitor.server import Monitor
from monitor_helpers import call, define_tasks, monitored, task_state, wait_until

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(params=["sqlite_app", "redis_app"])
def app(request: pytest.FixtureRequest) -> Corekit:
    return request.getfixturevalue(request.param)


def get(monitor: Monitor, path: str, **kwargs: Any) -> Any:
    response = call(monitor.url + path, **kwargs)
    assert response.status == 200, (path, response.status, response.body)
    return response.json


def test_the_api_shows_workers_tasks_queues_and_stats(app: Corekit) -> None:
    tasks = define_tasks(app)
    with monitored(app, concurrency=2) as (worker, monitor):
        added = tasks["add"].delay(2, 3)
        failed = tasks["boom"].delay("now")
        parent = tasks["spawn"].delay()
        assert added.get(timeout=15) == 5
        child_id = parent.get(timeout=15)
        wait_until(lambda: task_state(monitor, failed.id) == "FAILURE", what="the failure")
        wait_until(lambda: task_state(monitor, child_id) == "SUCCESS", what="the child")

        def our_worker() -> Any:
            workers = get(monitor, "/api/workers")["workers"]
            done = workers and workers[0]["processed"] >= 4 and workers[0]["inspected_at"]
            return workers if done else None
        [seen] = wait_until(our_worker, what="inspected, and a heartbeat counting 4 tasks")
        assert seen["hostname"] == worker.hostname and seen["online"] is True
        assert seen["status"] == "ONLINE" and seen["sw_ident"] == "corekit"
        assert seen["pool"]["implementation"] == "threads"
        assert seen["pool"]["max_concurrency"] == 2
        assert seen["queues"] == ["celery"]
        assert "proj.add" in " ".join(seen["registered"])
        detail = get(monitor, f"/api/workers/{worker.hostname}")
        assert detail["stats"]["prefetch_count"] >= 1

        page = get(monitor, "/api/tasks")
        assert page["total"] == 4
        assert {t["uuid"] for t in page["tasks"]} == {added.id, failed.id, parent.id, child_id}
        assert "events" not in page["tasks"][0]
        assert page["task_types"] == ["proj.add", "proj.boom", "proj.spawn"]
        only = lambda query: [t["uuid"] for t in get(monitor, "/api/tasks?" + query)["tasks"]]  # noqa: E731
        assert only("state=FAILURE") == [failed.id]
        assert only("state=failure,RETRY") == [failed.id]
        assert sorted(only("name=proj.add")) == sorted([added.id, child_id])
        assert only("search=2%2C%203") == [added.id]          # its args, [2, 3]
        assert only(f"search={failed.id[:13].upper()}") == [failed.id]
        assert only("search=NOW") == [failed.id]              # its args, case-insensitive
        assert len(only(f"worker={worker.hostname}")) == 4
        assert only("worker=nobody@nowhere") == []
        second = get(monitor, "/api/tasks?limit=1&offset=1")
        assert second["total"] == 4 and len(second["tasks"]) == 1
        assert second["tasks"][0]["uuid"] == page["tasks"][1]["uuid"]

        ok = get(monitor, f"/api/tasks/{added.id}")
        assert ok["state"] == "SUCCESS" and ok["name"] == "proj.add"
        assert ok["args"] == "[2, 3]" and ok["result"] == "5" and ok["worker"] == worker.hostname
        assert [e["type"] for e in ok["timeline"]] == [
            "task-received", "task-started", "task-succeeded"]
        assert ok["runtime"] >= 0 and ok["received"] <= ok["started"] <= ok["succeeded"]
        bad = get(monitor, f"/api/tasks/{failed.id}")
        assert bad["state"] == "FAILURE" and "boom now" in bad["exception"]
        assert "ValueError" in bad["traceback"]
        family = get(monitor, f"/api/tasks/{parent.id}")
        assert family["children"] == [{"uuid": child_id, "name": "proj.add", "state": "SUCCESS"}]
        assert get(monitor, f"/api/tasks/{child_id}")["parent"]["uuid"] == parent.id

        queues = get(monitor, "/api/queues")
        assert {"name": "celery", "messages": 0} in queues["queues"]
        assert "broker" in queues

        stats = get(monitor, "/api/stats")
        assert stats["totals"]["SUCCESS"] == 3 and stats["totals"]["RECEIVED"] == 4
        assert stats["totals"]["FAILURE"] == 1
        assert stats["current"] == {"SUCCESS": 3, "FAILURE": 1}
        assert stats["workers_online"] == 1 and stats["events"] >= 12
        counts = stats["per_second"]["counts"]
        assert sum(counts["succeeded"]) == 3 and sum(counts["failed"]) == 1
        assert len(counts["succeeded"]) == 300 and stats["per_second"]["step"] == 1.0
        assert sum(stats["per_minute"]["counts"]["received"]) == 4


def test_actions_revoke_retry_rate_limit_pool_and_shutdown(app: Corekit) -> None:
    tasks = define_tasks(app)
    with monitored(app, concurrency=1) as (worker, monitor):
        blocker = tasks["block"].delay()
        waiting = tasks["add"].delay(7, 7)  # behind the blocker on a one-slot pool
        wait_until(lambda: task_state(monitor, waiting.id) == "RECEIVED", what="received")
        revoked = call(f"{monitor.url}/api/tasks/{waiting.id}/revoke", "POST", {})
        assert revoked.status == 202 and revoked.json["terminate"] is False
        wait_until(lambda: worker.consumer.revoked.reason(waiting.id, {}), what="the revoke")
        tasks["gate"].set()
        assert blocker.get(timeout=15) == "unblocked"
        wait_until(lambda: task_state(monitor, waiting.id) == "REVOKED", what="REVOKED")

        flaky = tasks["flaky"].delay(4)
        wait_until(lambda: task_state(monitor, flaky.id) == "FAILURE", what="the failure")
        retried = call(f"{monitor.url}/api/tasks/{flaky.id}/retry", "POST", {})
        assert retried.status == 202, retried.json
        again = app.AsyncResult(retried.json["task_id"])
        assert again.id != flaky.id and again.get(timeout=15) == 40
        not_failed = call(f"{monitor.url}/api/tasks/{blocker.id}/retry", "POST", {})
        assert not_failed.status == 409 and "SUCCESS" in not_failed.json["error"]

        base = f"{monitor.url}/api/workers/{worker.hostname}"
        limited = call(f"{base}/rate_limit", "POST", {"task": "proj.add", "rate": "100/m"})
        assert limited.status == 200, limited.json
        assert limited.json["hostname"] == worker.hostname and "ok" in limited.json["reply"]
        assert app.tasks["proj.add"].rate_limit == "100/m"
        grown = call(f"{base}/pool_grow", "POST", {"n": 2})
        assert grown.status == 200 and "ok" in grown.json["reply"], grown.json
        assert worker.pool.concurrency == 3
        shrunk = call(f"{base}/pool_shrink", "POST", {"n": 1})
        assert shrunk.status == 200 and worker.pool.concurrency == 2

        stopped = call(f"{base}/shutdown", "POST", {})
        assert stopped.status == 202
        wait_until(lambda: not get(monitor, "/api/workers")["workers"][0]["online"],
                   what="the worker offline")


def test_errors_are_json_with_proper_status(sqlite_app: Corekit) -> None:
    with Monitor(sqlite_app, port=0, inspect_interval=0.3, inspect_timeout=0.2) as monitor:
        url = monitor.url

        def error(path: str, status: int, method: str = "GET", **kwargs: Any) -> str:
            response = call(url + path, method, **kwargs)
            assert response.status == status, (path, response.status, response.body)
            assert response.headers["Content-Type"] == "application/json"
            return str(response.json["error"])

        assert "no such API endpoint" in error("/api/nothing", 404)
        assert "no task" in error("/api/tasks/123", 404)
        assert "no worker" in error("/api/workers/nobody@nowhere", 404)
        assert "no worker" in error("/api/workers/nobody@nowhere/pool_grow", 404, "POST", body={})
        assert "not found" in error("/static/../../etc/passwd", 404)
        assert "use GET" in error("/api/tasks", 405, "POST")
        assert "use POST" in error("/api/tasks/123/revoke", 405)
        assert "use GET" in error("/metrics", 405, "DELETE")
        assert "limit must be" in error("/api/tasks?limit=0", 400)
        assert "offset must be an integer" in error("/api/tasks?offset=x", 400)
        assert "not JSON" in error("/api/tasks/123/revoke", 400, "POST", raw=b"{",
                                   headers={"Content-Type": "application/json"})
        assert "JSON object" in error("/api/tasks/123/revoke", 400, "POST", body=[1])
        assert "application/json" in error("/api/tasks/123/revoke", 415, "POST",
                                           raw=b"terminate=1")
        assert "terminate" in error("/api/tasks/123/revoke", 400, "POST", body={"terminate": 1})
        assert "unknown signal" in error("/api/tasks/123/revoke", 400, "POST",
                                         body={"signal": "SIGNOPE"})
        assert "may not act" in error("/api/tasks/123/revoke", 403, "POST", body={},
                                      headers={"Origin": "http://evil.example"})
        assert "no task" in error("/api/tasks/123/retry", 404, "POST", body={})
        # a revoke of a task the monitor never saw still goes out (it may be waiting)
        assert call(url + "/api/tasks/123/revoke", "POST", body={"terminate": True}).status == 202


def test_auth_protects_everything_when_set(sqlite_app: Corekit) -> None:
    auth = Auth(users=parse_basic_auth("ann:s3cret,bob:pw"), token="tok-en")
    with Monitor(sqlite_app, port=0, auth=auth, inspect_interval=0.3,
                 inspect_timeout=0.2) as monitor:
        url = monitor.url

        def basic(user: str, password: str) -> dict[str, str]:
            encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
            return {"Authorization": f"Basic {encoded}"}

        for path in ("/", "/static/app.js", "/metrics", "/api/workers", "/api/nothing"):
            refused = call(url + path)
            assert refused.status == 401, path
            assert refused.headers["WWW-Authenticate"].startswith("Basic")
        assert call(url + "/api/tasks/x/revoke", "POST", {}).status == 401
        assert call(url + "/api/workers", headers=basic("ann", "wrong")).status == 401
        assert call(url + "/api/workers", headers=basic("eve", "s3cret")).status == 401
        assert call(url + "/api/workers", headers={"Authorization": "Bearer nope"}).status == 401
        assert call(url + "/api/workers", headers=basic("ann", "s3cret")).status == 200
        assert call(url + "/api/workers", headers=basic("bob", "pw")).status == 200
        assert call(url + "/metrics", headers={"Authorization": "Bearer tok-en"}).status == 200
        assert call(url + "/api/workers?token=tok-en").status == 200
        # the browser: /?token= keeps the token in a cookie and drops it from the URL
        landing = call(url + "/?token=tok-en")
        assert landing.status == 303 and landing.headers["Location"] == "/"
        cookie = landing.headers["Set-Cookie"].split(";")[0]
        assert cookie == "token=tok-en" and "HttpOnly" in landing.headers["Set-Cookie"]
        page = call(url + "/", headers={"Cookie": cookie})
        assert page.status == 200 and "corekit monitor" in page.text
        assert call(url + "/", headers={"Cookie": "token=other"}).status == 401
        acted = call(url + "/api/tasks/x/revoke", "POST", {}, headers={"Cookie": cookie})
        assert acted.status == 202


def test_no_auth_beyond_loopback(sqlite_app: Corekit) -> None:
    with pytest.raises(AuthConfigError, match="refusing to listen on 0.0.0.0 without"):
        Monitor(sqlite_app, address="0.0.0.0", port=0)
    with pytest.raises(AuthConfigError, match="user:password"):
        parse_basic_auth("ann")
    guarded = Monitor(sqlite_app, address="0.0.0.0", port=0, auth=Auth(token="t"))
    guarded.close()


def test_metrics_parse_as_prometheus_text(app: Corekit) -> None:
    tasks = define_tasks(app)
    with monitored(app) as (worker, monitor):
        for i in range(3):
            tasks["add"].delay(i, i).get(timeout=15)
        failed = tasks["boom"].delay("x")
        wait_until(lambda: task_state(monitor, failed.id) == "FAILURE", what="the failure")
        wait_until(lambda: get(monitor, "/api/workers")["workers"][0]["processed"] == 4,
                   what="a heartbeat counting 4 tasks")
        response = call(monitor.url + "/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}

    def value(family: str, sample: str | None = None, **labels: str) -> float:
        [found] = [s.value for s in families[family].samples
                   if s.name == (sample or family) and all(s.labels.get(k) == v
                                                           for k, v in labels.items())]
        return found

    assert families["corekit_workers_online"].type == "gauge"
    assert value("corekit_workers_online") == 1
    assert value("corekit_worker_online", hostname=worker.hostname) == 1
    assert value("corekit_worker_processed", "corekit_worker_processed_total",
                 hostname=worker.hostname) == 4
    assert value("corekit_worker_active_tasks", hostname=worker.hostname) == 0
    assert families["corekit_tasks"].type == "counter"
    assert value("corekit_tasks", "corekit_tasks_total", name="proj.add", state="SUCCESS") == 3
    assert value("corekit_tasks", "corekit_tasks_total", name="proj.boom", state="FAILURE") == 1
    assert value("corekit_tasks", "corekit_tasks_total", name="proj.add", state="RECEIVED") == 3
    assert families["corekit_task_runtime_seconds"].type == "histogram"
    assert value("corekit_task_runtime_seconds", "corekit_task_runtime_seconds_count",
                 name="proj.add") == 3
    assert value("corekit_task_runtime_seconds", "corekit_task_runtime_seconds_bucket",
                 name="proj.add", le="+Inf") == 3
    assert value("corekit_queue_length", queue="celery") == 0
    assert value("corekit_events_received", "corekit_events_received_total",
                 type="task-succeeded") == 3


def test_the_cli_serves_until_interrupted(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'broker.sqlite3'}"
    refused = subprocess.run([sys.executable, "-m", "corekit", "-b", url, "monitor",
                              "--address", "0.0.0.0", "--port", "0"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "without --basic-auth or --auth-token" in refused.stderr
    proc = subprocess.Popen([sys.executable, "-m", "corekit", "-b", url, "monitor", "--port",
                             "0", "--auth-token", "abc"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert banner.startswith("corekit monitor on http://127.0.0.1:"), banner
        assert "auth required" in banner
        base = banner.split()[3]
        assert call(base + "/api/workers").status == 401
        assert call(base + "/api/workers", headers={"Authorization": "Bearer abc"}).json == {
            "workers": []}
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:  # say where it hangs: faulthandler dumps every thread
            proc.send_signal(signal.SIGABRT)
            out, err = proc.communicate(timeout=20)
            raise AssertionError(f"the monitor did not stop on SIGINT:\n{out}\n{err[-6000:]}")
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "monitor: stopping" in out


def test_a_rate_series_counts_per_bucket_and_forgets_old_ones() -> None:
    series = RateSeries(step=1.0, length=3, kinds=("succeeded", "failed"))
    series.add("succeeded", when=100.2)
    series.add("succeeded", when=100.9)
    series.add("failed", when=101.5)
    assert series.as_dict(now=101.7) == {"step": 1.0, "start": 99.0, "counts": {
        "succeeded": [0, 2, 0], "failed": [0, 0, 1]}}
    series.add("failed", when=104.1)  # buckets 100 and 101 fall out of the window
    assert series.as_dict(now=104.1)["counts"] == {"succeeded": [0, 0, 0],
                                                   "failed": [0, 0, 1]}
    assert sorted(series._buckets) == [104]


def test_metric_labels_are_escaped() -> None:
    metrics = TaskMetrics()
    metrics.event({"type": "task-succeeded", "runtime": 0.2}, 'odd"name\\n')
    text = render(metrics, [{"hostname": "w\n1", "online": True, "processed": 1}], {})
    families = {f.name: f for f in text_string_to_metric_families(text)}
    [sample] = families["corekit_tasks"].samples
    assert sample.labels == {"name": 'odd"name\\n', "state": "SUCCESS"}
    assert families["corekit_worker_online"].samples[0].labels == {"hostname": "w\n1"}
