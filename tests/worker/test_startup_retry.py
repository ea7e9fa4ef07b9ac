"""A worker started while its broker or result backend is down waits for
it (broker_connection_retry_on_startup, broker_connection_max_retries):
the outage logged once, password masked, no traceback; a bounded wait that
runs out, or no retry at all, ends with one line and exit status 1."""
from __future__ import annotations

import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from corekit import Corekit
from helpers import ROOT, LineReader
from servers import RabbitServer, RedisServer
from tcp_gate import TcpGate

PROJ = '''
import json, os
from corekit import Corekit
app = Corekit("proj", broker_heartbeat=0.2, broker_lease_timeout=2)
app.conf.update(json.loads(os.environ.get("PROJ_SETTINGS", "{}")))

@app.task
def add(x, y):
    return x + y
'''
OUTAGE = "Cannot connect to the"
REDIS_USER, SECRET = "startup", "s3cret-pw"


class Worker(LineReader):
    """``corekit worker`` in a subprocess, its output read line by line."""

    def __init__(self, cwd: Path, broker: str, backend: str, *args: str,
                 settings: dict[str, Any] | None = None) -> None:
        super().__init__(
            [sys.executable, "-m", "corekit", "-A", "proj", "-b", broker,
             "--result-backend", backend, "worker", "-P", "solo", "--no-banner", *args],
            cwd, {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), str(ROOT)]),
                  "PROJ_SETTINGS": json.dumps(settings or {})})

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.finish()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Any]:
    (tmp_path / "proj.py").write_text(PROJ)
    started: list[Worker] = []

    def start(*args: Any, **kwargs: Any) -> Worker:
        started.append(Worker(tmp_path, *args, **kwargs))
        return started[-1]

    yield start
    for worker in started:
        worker.kill()


@pytest.fixture
def redis_user(redis_server: RedisServer, redis_url: str) -> str:
    """The session's Redis URL with a user and password of its own (an ACL
    user, so the default user and the other tests are left alone)."""
    import redis

    redis.Redis(port=redis_server.port).acl_setuser(
        REDIS_USER, enabled=True, passwords=[f"+{SECRET}"], keys=["*"], channels=["*"],
        commands=["+@all"])
    return f"redis://{REDIS_USER}:{SECRET}@127.0.0.1:{{port}}/0"


def assert_outage_told_once(worker: Worker, masked: str) -> None:
    output = worker.output
    told = [line for line in worker.lines if OUTAGE in line]
    assert len(told) == 1, output
    assert masked in told[0], output
    assert SECRET not in output and "guest:guest" not in output, output
    assert "Traceback" not in output, output


def test_a_worker_waits_for_redis_and_then_runs_tasks(
        workers: Any, redis_server: RedisServer, redis_user: str) -> None:
    with TcpGate(redis_server.port) as gate:
        url = gate.url(redis_user)
        worker = workers(url, url)
        worker.wait_for(OUTAGE + " broker")
        gate.open()
        client = Corekit("client", broker=redis_server.url, backend=redis_server.url)
        try:
            assert client.send_task("proj.add", (2, 2)).get(timeout=30) == 4
        finally:
            client.close()
        assert worker.stop() == 0
    assert_outage_told_once(worker, f"redis://{REDIS_USER}:**@127.0.0.1:{gate.port}/0")
    assert "Connected to the broker" in worker.output


def test_a_worker_waits_for_its_result_backend(
        workers: Any, redis_server: RedisServer, redis_user: str) -> None:
    with TcpGate(redis_server.port) as gate:
        backend = gate.url(redis_user)
        worker = workers(redis_server.url, backend)
        worker.wait_for(OUTAGE + " result backend")
        gate.open()
        client = Corekit("client", broker=redis_server.url, backend=redis_server.url)
        try:
            assert client.send_task("proj.add", (3, 4)).get(timeout=30) == 7
        finally:
            client.close()
        assert worker.stop() == 0
    assert_outage_told_once(worker, f"redis://{REDIS_USER}:**@127.0.0.1:{gate.port}/0")


def test_a_worker_waits_for_rabbitmq(workers: Any, rabbitmq_server: RabbitServer,
                                     amqp_url: str, tmp_path: Path) -> None:
    results = f"sqlite://{tmp_path / 'results.sqlite3'}"
    with TcpGate(rabbitmq_server.port) as gate:
        gated = amqp_url.replace(f":{rabbitmq_server.port}/", f":{gate.port}/")
        worker = workers(gated, results)
        worker.wait_for(OUTAGE + " broker")
        gate.open()
        client = Corekit("client", broker=amqp_url, backend=results)
        try:
            assert client.send_task("proj.add", (5, 5)).get(timeout=30) == 10
        finally:
            client.close()
        assert worker.stop() == 0
    vhost = amqp_url.rpartition("/")[2]
    assert_outage_told_once(worker, f"amqp://guest:**@127.0.0.1:{gate.port}/{vhost}")


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_a_bounded_wait_ends_with_one_line_and_status_1(workers: Any, tmp_path: Path,
                                                        scheme: str) -> None:
    gate = TcpGate(1)  # never opened: nothing listens on its port
    url = gate.url(f"{scheme}://someone:{SECRET}@127.0.0.1:{{port}}/0")
    worker = workers(url, f"sqlite://{tmp_path / 'r.sqlite3'}",
                     settings={"broker_connection_max_retries": 2})
    assert worker.finish() == 1
    lines = [line for line in worker.lines if line.strip()]
    assert len(lines) == 2, worker.output  # the outage, then the end
    assert OUTAGE in lines[0]
    assert "after 2 retries" in lines[1] and f"someone:**@127.0.0.1:{gate.port}" in lines[1]
    assert SECRET not in worker.output and "Traceback" not in worker.output


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
def test_without_retry_on_startup_it_fails_at_once(workers: Any, tmp_path: Path,
                                                   scheme: str) -> None:
    gate = TcpGate(1)
    url = gate.url(f"{scheme}://someone:{SECRET}@127.0.0.1:{{port}}/0")
    worker = workers(url, f"sqlite://{tmp_path / 'r.sqlite3'}",
                     settings={"broker_connection_retry_on_startup": False})
    assert worker.finish() == 1
    lines = [line for line in worker.lines if line.strip()]
    assert len(lines) == 1, worker.output
    assert f"someone:**@127.0.0.1:{gate.port}" in lines[0]
    assert "broker_connection_retry_on_startup" in lines[0]
    assert SECRET not in worker.output


def test_sigterm_while_waiting_stops_it_at_once(workers: Any, tmp_path: Path) -> None:
    gate = TcpGate(1)
    worker = workers(gate.url("redis://127.0.0.1:{port}/0"),
                     f"sqlite://{tmp_path / 'r.sqlite3'}",
                     settings={"broker_connection_max_retries": None})
    worker.wait_for(OUTAGE)
    assert worker.stop() == 0
    assert "Traceback" not in worker.output


def test_the_traceback_is_there_at_debug_level(workers: Any, tmp_path: Path) -> None:
    gate = TcpGate(1)
    worker = workers(gate.url("redis://127.0.0.1:{port}/0"),
                     f"sqlite://{tmp_path / 'r.sqlite3'}", "-l", "debug",
                     settings={"broker_connection_max_retries": 1})
    assert worker.finish() == 1
    assert "Traceback" in worker.output


def test_a_broker_outage_while_running_is_told_once_by_the_heartbeat(
        workers: Any, redis_server: RedisServer, tmp_path: Path) -> None:
    """The broker heartbeat (every 0.2 s here) fails on each beat while the
    broker is away: one WARNING line for the outage, the rest at DEBUG."""
    gate = TcpGate(redis_server.port)
    gate.open()
    url = gate.url("redis://127.0.0.1:{port}/0")
    worker = workers(url, f"sqlite://{tmp_path / 'r.sqlite3'}", "-l", "debug")
    try:
        worker.wait_for("ready")
        gate.close()
        for _ in range(3):
            worker.wait_for(r"[Hh]eartbeat to the broker")
        gate.open()
        worker.wait_for(r"Heartbeat to the broker is back")
        assert worker.stop() == 0
    finally:
        gate.close()
    told = [line for line in worker.lines
            if re.search(r"WARNING.*[Hh]eartbeat to the broker.*fail", line)
            and "is back" not in line]
    assert len(told) == 1, worker.output
    assert f"redis://127.0.0.1:{gate.port}/0" in told[0]
