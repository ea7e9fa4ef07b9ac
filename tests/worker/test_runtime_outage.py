"""A broker outage while a worker runs is told once per component (the
consumer, the broker heartbeat, remote control, the events sender), on one
line with the broker's masked URL and no traceback, and its end once; the
worker then runs tasks and answers remote control again."""
from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

import pytest

from corekit import Corekit
from corekit.testing import start_worker
from servers import RedisServer
from tcp_gate import TcpGate
from test_startup_retry import REDIS_USER, SECRET, redis_user, workers  # noqa: F401 (fixtures)

#: (component, its outage line, its line when the broker is back)
COMPONENTS = [
    ("consumer", r"ERROR.*Broker error, will retry", r"Broker connection is back"),
    ("heartbeat", r"WARNING.*Heartbeat to the broker at .* failed",
     r"Heartbeat to the broker is back"),
    ("remote control", r"WARNING.*Remote control: cannot read from the broker at",
     r"Remote control: the broker is back"),
    ("events", r"WARNING.*Events: cannot publish to the broker at",
     r"Events: the broker is back"),
]
#: how long the broker stays away once every component has noticed: several
#: retries of each (remote control tries every second)
OUTAGE_SECONDS = 3.0


def wait_for_all(worker: Any, patterns: list[str], start: int, timeout: float = 30) -> None:
    """Until each of *patterns* matches a line from *start* on, in any order."""
    deadline = time.monotonic() + timeout
    while True:
        lines = worker.lines[start:]
        if all(any(re.search(p, line) for line in lines) for p in patterns):
            return
        worker.wait_for(".", timeout=max(0.1, deadline - time.monotonic()))  # the next line


def test_a_broker_outage_while_running_is_told_once_per_component(
        workers: Any, redis_server: RedisServer, redis_user: str) -> None:  # noqa: F811
    client = Corekit("client", broker=redis_server.url, backend=redis_server.url)
    with TcpGate(redis_server.port) as gate:
        gate.open()
        broker = gate.url(redis_user)
        # worker events every 0.5 s, so the events sender meets the outage too
        worker = workers(broker, redis_server.url, "-l", "info", "-E", "--heartbeat-interval", "0.5",
                         settings={"broker_lease_timeout": 60})
        try:
            worker.wait_for("ready")
            assert client.send_task("proj.add", (1, 1)).get(timeout=30) == 2
            closed_at = len(worker.lines)
            gate.close()
            wait_for_all(worker, [outage for _, outage, _ in COMPONENTS], closed_at)
            time.sleep(OUTAGE_SECONDS)  # the outage itself: every component retries meanwhile
            opened_at = len(worker.lines)
            gate.open()
            wait_for_all(worker, [back for _, _, back in COMPONENTS], opened_at)
            assert client.send_task("proj.add", (2, 3)).get(timeout=30) == 5
            assert client.control.ping(timeout=5)  # remote control listens again
            assert worker.stop() == 0
        finally:
            worker.kill()
            client.close()
    output = worker.output
    masked = f"redis://{REDIS_USER}:**@127.0.0.1:{gate.port}/0"
    for name, outage, back in COMPONENTS:
        told = [line for line in worker.lines if re.search(outage, line)]
        assert len(told) == 1, f"{name}:\n{output}"
        assert masked in told[0], f"{name}:\n{output}"
        assert len([line for line in worker.lines if re.search(back, line)]) == 1, \
            f"{name}:\n{output}"
    assert "Traceback" not in output, output
    assert SECRET not in output, output


@pytest.mark.parametrize("error,traceback", [(ConnectionError("gone"), False),
                                             (TypeError("a bug"), True)],
                         ids=["connection", "bug"])
def test_the_consumer_keeps_the_traceback_of_an_error_that_is_not_an_outage(
        memory_app: Corekit, caplog: Any, error: Exception, traceback: bool) -> None:
    @memory_app.task
    def ping() -> str:
        return "pong"

    caplog.set_level(logging.DEBUG, logger="corekit.worker")
    with start_worker(memory_app) as worker:
        transport = worker.transport
        real_fetch, failed = transport.fetch, threading.Event()

        def fetch_failing_once(*args: Any) -> Any:
            if not failed.is_set():
                failed.set()
                raise error
            return real_fetch(*args)

        transport.fetch = fetch_failing_once
        assert failed.wait(20)
        assert ping.delay().get(timeout=20) == "pong"
    told = [r for r in caplog.records if r.levelno == logging.ERROR
            and "Broker error" in r.getMessage()]
    assert len(told) == 1
    assert str(error) in told[0].getMessage()
    assert (told[0].exc_info is not None) is traceback
    assert any(r.levelno == logging.DEBUG and r.exc_info for r in caplog.records
               if "Broker failing" in r.getMessage())


def test_a_result_backend_outage_is_told_once_and_loses_no_result(
        workers: Any, redis_server: RedisServer, redis_user: str) -> None:  # noqa: F811
    """Results finished while the result backend is away are stored once it
    is back; the outage is one line with the backend's masked URL."""
    client = Corekit("client", broker=redis_server.url, backend=redis_server.url)
    with TcpGate(redis_server.port) as gate:
        gate.open()
        worker = workers(redis_server.url, gate.url(redis_user), "-l", "info")
        try:
            worker.wait_for("ready")
            assert client.send_task("proj.add", (1, 1)).get(timeout=30) == 2
            gate.close()
            pending = [client.send_task("proj.add", (i, i)) for i in range(5)]
            worker.wait_for("could not store", timeout=30)
            gate.open()
            assert [r.get(timeout=30) for r in pending] == [2 * i for i in range(5)]
            assert worker.stop() == 0
        finally:
            worker.kill()
            client.close()
    output = worker.output
    told = [line for line in worker.lines if "could not store" in line]
    assert len(told) == 1, output
    assert f"redis://{REDIS_USER}:**@127.0.0.1:{gate.port}/0" in told[0], output
    assert len([line for line in worker.lines if "result backend is back" in line]) == 1, output
    assert "Traceback" not in output, output
    assert SECRET not in output, output
