"""The health plugin on real workers: ``--health-port`` answers 200 while
the worker consumes, 503 with the reason while its broker is gone or its
consumer loop is wedged, and nothing once it stopped; ``--health-file`` is
touched on the same terms, and a shell probe on its age tells the two apart."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from corekit import Corekit
from servers import free_port
from service_helpers import PrivateRedis, WorkerProcess, wait_until

PROJ = '''
import json, os, time
from corekit import Corekit
app = Corekit("proj")
app.conf.update(json.loads(os.environ.get("PROJ_SETTINGS", "{}")))

@app.task
def block(seconds):
    time.sleep(seconds)
    return seconds
'''
NODE = "health@box"
FAST = {"worker_health_interval": 0.2, "worker_health_stall_timeout": 1.5}


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    (tmp_path / "proj.py").write_text(PROJ)
    return tmp_path


@pytest.fixture
def started(proj: Path) -> Iterator[Any]:
    workers: list[WorkerProcess] = []

    def start(broker: str, *args: str, settings: dict[str, Any] | None = None) -> WorkerProcess:
        env = {"PROJ_SETTINGS": json.dumps({**FAST, **(settings or {})})}
        workers.append(WorkerProcess(proj, "-A", "proj", "-b", broker, "worker", "-n", NODE,
                                     "--no-banner", "-l", "info", *args, env=env))
        return workers[-1]

    yield start
    for worker in workers:
        worker.kill()


def get(port: int, path: str = "/healthz") -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def status_becomes(port: int, code: int, timeout: float = 10, path: str = "/healthz"
                   ) -> dict[str, Any]:
    return wait_until(lambda: (lambda got: got[1] if got[0] == code else None)(get(port, path)),
                      timeout, f"GET {path} -> {code}")


def mtime(path: Path) -> float:
    return path.stat().st_mtime


def advances(path: Path, within: float = 3) -> bool:
    """Whether *path* is touched again within *within* seconds."""
    before = mtime(path)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.exists() and mtime(path) > before:
            return True
        time.sleep(0.05)
    return False


def probe(script: str) -> int:
    return subprocess.run(["sh", "-c", script], capture_output=True).returncode


def test_http_and_file_follow_the_broker(proj: Path, tmp_path: Path, started: Any) -> None:
    redis = PrivateRedis(tmp_path)
    try:
        port, beacon = free_port(), tmp_path / "worker.health"
        worker = started(redis.url, "-P", "threads", "-c", "2", "--health-port", str(port),
                         "--health-file", str(beacon))
        worker.wait_for("Cannot connect to the broker")  # it waits for its broker
        body = status_becomes(port, 503)
        assert body["status"] == "starting" and body["broker"] == "connecting"
        assert get(port, "/livez")[0] == 200 and not beacon.exists()
        redis.start()
        worker.wait_for(r"ready\.")
        body = status_becomes(port, 200, timeout=5)  # "ready." is logged just before
        assert body["status"] == "ok" and body["node"] == NODE
        assert body["broker"] == "connected" and body["pid"] == worker.pid
        assert get(port, "/readyz")[0] == get(port, "/livez")[0] == 200
        assert get(port, "/nothing")[0] == 404
        posted = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", data=b"",
                                        method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(posted, timeout=5)
        assert refused.value.code == 405
        assert json.loads(refused.value.read()) == {"error": "Method Not Allowed"}
        wait_until(beacon.exists, what="the health file")
        assert advances(beacon)

        redis.stop()
        lost_at = time.monotonic()
        body = status_becomes(port, 503, timeout=5)
        assert time.monotonic() - lost_at < 5
        assert body["status"] == "broker lost" and body["broker"] == "lost"
        assert "Connection refused" in body["reason"] or "Connection closed" in body["reason"]
        # the loop still turns (it retries): live, and a restart would not help
        code, body = get(port, "/livez")
        assert code == 200 and body["live"] is True and body["status"] == "broker lost"
        assert get(port, "/readyz")[0] == 503
        assert not advances(beacon, within=1.0)

        redis.start()
        body = status_becomes(port, 200, timeout=20)
        assert body["broker"] == "connected"
        assert advances(beacon)

        assert worker.stop() == 0, worker.output
        with pytest.raises(urllib.error.URLError) as refused:
            get(port)
        assert isinstance(refused.value.reason, ConnectionRefusedError)
        assert not beacon.exists()  # removed at stop: a probe fails at once
    finally:
        redis.stop()


def test_a_wedged_consumer_loop_is_stalled(proj: Path, tmp_path: Path, started: Any) -> None:
    """The solo pool runs a task in the consumer's own thread: while it
    runs, the loop does not turn, whatever the other threads do."""
    broker = f"sqlite://{tmp_path / 'broker.db'}"
    port, beacon = free_port(), tmp_path / "worker.health"
    worker = started(broker, "-P", "solo", "--health-port", str(port),
                     "--health-file", str(beacon))
    worker.wait_for(r"ready\.")
    wait_until(beacon.exists, what="the health file")
    fresh = f"test $(( $(date +%s) - $(stat -c %Y {beacon}) )) -lt 2"
    assert probe(fresh) == 0
    assert probe(f"find {beacon} -mmin -1 | grep -q .") == 0

    app = Corekit("proj", broker=broker)
    app.send_task("proj.block", (6,))
    body = status_becomes(port, 503, timeout=5)
    assert body["status"] == "stalled" and "has not turned" in body["reason"]
    assert get(port, "/livez")[0] == 503  # a wedged loop is worth a restart
    assert not advances(beacon, within=1.0)
    wait_until(lambda: probe(fresh) != 0, timeout=4, what="the age probe fails")

    assert status_becomes(port, 200, timeout=15)["status"] == "ok"  # the task ended
    assert advances(beacon)
    assert probe(fresh) == 0
    assert worker.stop() == 0


def test_a_port_in_use_or_a_bad_path_is_a_clear_start_error(proj: Path, tmp_path: Path,
                                                            started: Any) -> None:
    broker = f"sqlite://{tmp_path / 'broker.db'}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = started(broker, "-P", "threads", "--health-port", str(port))
        assert worker.finish() == 1
        assert worker.output == (f"Error: health checks cannot listen on 127.0.0.1:{port} "
                                 "(worker_health_host, worker_health_port): Address already "
                                 "in use\n")

    worker = started(broker, "--health-file", str(tmp_path / "no" / "such" / "file"))
    assert worker.finish() == 1
    assert worker.output.startswith("Error: worker_health_file ")
    assert "does not exist" in worker.output and len(worker.output.splitlines()) == 1

    worker = started(broker, "--health-port", "70000")
    assert worker.finish() == 2 and "a port is 0 to 65535, not 70000" in worker.output

    worker = started(broker, "--health-file", str(tmp_path / "h"),
                     settings={"worker_health_interval": 0})
    assert worker.finish() == 1
    assert "worker_health_interval must be more than 0 seconds" in worker.output


def test_without_the_options_the_step_is_off(proj: Path, tmp_path: Path) -> None:
    from corekit.plugins.health.step import HealthStep

    app = Corekit("proj", broker="memory://", result_backend="memory://")
    worker = app.Worker(pool="threads", concurrency=1)
    worker.setup()
    assert HealthStep not in worker.blueprint
    assert os.listdir(tmp_path) == ["proj.py"]
