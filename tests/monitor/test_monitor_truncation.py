"""Huge values in events: the worker truncates what it sends, the cluster
state truncates what it keeps (a Celery worker sends them whole), the
monitor stays small, and the full value is still read from the result
backend on demand."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from corekit import Corekit
from corekit.events.dispatcher import EventDispatcher
from corekit.events.receiver import EventReceiver
from corekit.events.truncate import DEFAULT_MAX_FIELD_SIZE
from corekit.testing import start_worker
from monitor_helpers import call, cli_monitor, proc_status, wait_until

pytestmark = pytest.mark.timeout(240)

MB = 1024 * 1024


def test_huge_failures_keep_the_monitor_small_and_the_full_value_fetchable(
        sqlite_app: Corekit) -> None:
    app = sqlite_app
    url = app.conf.broker_url

    @app.task(name="proj.huge")
    def huge(i: int) -> None:
        raise ValueError(f"huge {i}: " + "x" * (10 * MB))

    sent_by_worker: list[dict[str, Any]] = []
    stop = threading.Event()
    receiver = EventReceiver(app, {"task-failed": sent_by_worker.append,
                                   "worker-heartbeat": sent_by_worker.append})
    listening = threading.Thread(target=receiver.capture, kwargs={"should_stop": stop.is_set},
                                 daemon=True)
    listening.start()
    try:
        with cli_monitor(url, "--inspect-interval", "1", "--request-timeout", "3") as (proc, base):
            for _ in range(5):
                assert call(base + "/api/tasks").status == 200
            baseline = proc_status(proc.pid, "VmRSS")
            with start_worker(app, task_events=True, heartbeat_interval=0.5) as worker:
                wait_until(lambda: any(w["hostname"] == worker.hostname
                                       for w in call(base + "/api/workers").json["workers"]),
                           what="the monitor hearing the worker")
                wait_until(lambda: sent_by_worker, what="the test hearing the worker")
                results = [huge.delay(i) for i in range(20)]
                for result in results:
                    assert result.get(timeout=120, propagate=False) is not None
                wait_until(lambda: call(base + "/api/tasks?state=FAILURE").json["total"] == 20,
                           timeout=60, what="20 failures in the monitor")
                hostname = worker.hostname
            after_worker = (proc_status(proc.pid, "VmRSS") - baseline) / 1024
            # a Celery worker sends its events whole: the monitor's state cuts them
            celery_like = EventDispatcher(app, hostname="celery@elsewhere")
            for i in range(20):
                celery_like.send("task-failed", uuid=f"celery-{i}", timestamp=1000.0 + i,
                                 exception="ValueError('" + "y" * MB + "')",
                                 traceback="Traceback\n" + "z" * (10 * MB))
                celery_like.flush(60)
                wait_until(lambda: call(f"{base}/api/tasks/celery-{i}").status == 200,
                           timeout=60, what="the untruncated event in the monitor")
            celery_like.close()
            grown = (proc_status(proc.pid, "VmRSS") - baseline) / 1024
            print(f"the monitor's RSS: {baseline / 1024:.0f} MB, +{after_worker:.0f} MB after "
                  f"the worker's 20 failures, +{grown:.0f} MB after 20 untruncated events")
            assert after_worker < 50, f"the monitor grew by {after_worker:.0f} MB"
            assert grown < 100, f"the monitor grew by {grown:.0f} MB"

            one = call(f"{base}/api/tasks/{results[0].id}")
            assert one.status == 200 and len(one.body) < 64 * 1024, len(one.body)
            assert "…(truncated, " in one.json["traceback"] and one.json["truncated"] == [
                "traceback"]
            assert len(one.json["exception"]) < 1100  # each argument's repr is cut to 1 KiB
            other = call(f"{base}/api/tasks/celery-3")
            assert len(other.body) < 64 * 1024
            assert other.json["truncated"] == ["exception", "traceback"]
            page = call(f"{base}/api/tasks?limit=1000")
            assert page.json["total"] == 40 and len(page.body) < 1024 * 1024

            full = call(f"{base}/api/tasks/{results[0].id}/result")
            assert full.status == 200, full.body[:300]
            assert full.json["status"] == "FAILURE" and full.json["task_id"] == results[0].id
            assert f"ValueError: huge 0: {'x' * (10 * MB)}" in full.json["traceback"]
            assert full.json["result"]["exc_type"] == "ValueError"
            missing = call(f"{base}/api/tasks/no-such-task/result")
            assert missing.status == 200 and missing.json["status"] == "PENDING"
            assert_a_reader_that_stalls_is_dropped(base, f"/api/tasks/{results[0].id}/result",
                                                   len(full.body))
    finally:
        stop.set()
        listening.join(10)
        receiver.close()
    failed = [e for e in sent_by_worker
              if e["type"] == "task-failed" and e["hostname"] == hostname]
    assert len(failed) == 20
    for event in failed:  # what the worker itself sent
        assert len(event["traceback"].encode()) <= DEFAULT_MAX_FIELD_SIZE
        assert "…(truncated, " in event["traceback"]
        assert len(event["exception"].encode()) <= DEFAULT_MAX_FIELD_SIZE


def assert_a_reader_that_stalls_is_dropped(base: str, path: str, size: int) -> None:
    """A client that asks for a 10 MB reply and stops reading is dropped after
    the request timeout (3 s), not served forever."""
    host, port = base.split("//")[1].rsplit(":", 1)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.connect((host, int(port)))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    time.sleep(8)  # a client that does not read: nothing to wait on but time
    sock.settimeout(10)
    received = 0
    try:
        while chunk := sock.recv(1 << 20):
            received += len(chunk)
    except ConnectionResetError:
        pass
    sock.close()
    assert 0 < received < size, (received, size)
