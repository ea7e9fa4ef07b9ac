"""Remote control across Celery and corekit (the ``celery`` package is a test
dependency): Celery's command line steers a corekit worker over RabbitMQ and
over Redis (where Celery speaks kombu's Redis layout), and corekit's command
line is answered by a real Celery worker."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from corekit import Corekit
from corekit.testing import start_worker
from helpers import run_cli

pytest.importorskip("celery", reason="celery is a test dependency (pip install -e '.[test]')")

OURS, THEIRS = "corekit-w@box", "celery-w@box"

CELERY_PROJ = '''
import os
from celery import Celery
app = Celery("proj", broker=os.environ["BROKER"])

@app.task(name="proj.add")
def add(x, y):
    return x + y
'''

COREKIT_PROJ = '''
import os
from corekit import Corekit
app = Corekit("proj", broker=os.environ["BROKER"])
'''


def celery(tmp_path: Path, broker: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``celery -A celery_proj ARGS`` against *broker*."""
    (tmp_path / "celery_proj.py").write_text(CELERY_PROJ)
    return subprocess.run([sys.executable, "-m", "celery", "-A", "celery_proj", *args],
                          cwd=tmp_path, env={**os.environ, "BROKER": broker},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(params=["amqp", "redis"])
def corekit_worker(request: pytest.FixtureRequest) -> Iterator[str]:
    """A corekit worker named `OURS` on the suite's RabbitMQ or Redis; yields the URL."""
    url = request.getfixturevalue(f"{request.param}_url")
    app = Corekit("proj", broker=url, backend="memory://")

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    with start_worker(app, hostname=OURS):
        yield url
    app.close()


def test_celerys_command_line_steers_a_corekit_worker(corekit_worker: str,
                                                      tmp_path: Path) -> None:
    out = celery(tmp_path, corekit_worker, "inspect", "ping", "-d", OURS, "-t", "20")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"->  {OURS}: OK\n        pong\n" in out.stdout and "1 node online." in out.stdout

    out = celery(tmp_path, corekit_worker, "inspect", "stats", "-d", OURS, "-t", "20", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    stats = json.loads(out.stdout)[OURS]
    assert stats["pool"]["implementation"] == "threads" and stats["pid"] == os.getpid()

    out = celery(tmp_path, corekit_worker, "control", "rate_limit", "proj.add", "10/m",
                 "-d", OURS, "-t", "20")
    assert out.returncode == 0 and out.stdout.startswith(f"->  {OURS}: OK"), out
    out = celery(tmp_path, corekit_worker, "inspect", "registered", "rate_limit", "-d", OURS,
                 "-t", "20", "--json")
    assert json.loads(out.stdout) == {OURS: ["proj.add [rate_limit=10/m]"]}

    out = celery(tmp_path, corekit_worker, "status", "-t", "1")
    assert out.returncode == 0 and f"->  {OURS}: OK" in out.stdout, out


@pytest.fixture(params=["amqp"])
def celery_worker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A real Celery worker named `THEIRS`; yields its broker URL once it answers."""
    url = request.getfixturevalue(f"{request.param}_url")
    (tmp_path / "celery_proj.py").write_text(CELERY_PROJ)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_proj", "worker", "--pool", "solo",
         "-n", THEIRS, "--without-mingle", "--without-gossip", "--without-heartbeat"],
        cwd=tmp_path, env={**os.environ, "BROKER": url},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    app = Corekit("proj", broker=url)
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping([THEIRS], timeout=0.5):
            assert worker.poll() is None, worker.communicate()[0]
            assert time.monotonic() < deadline, "the Celery worker never answered"
        yield url
    finally:
        app.close()
        worker.kill()  # its warm shutdown takes seconds, and the vhost is thrown away
        worker.communicate(timeout=30)


def test_corekits_command_line_is_answered_by_a_celery_worker(celery_worker: str,
                                                              tmp_path: Path) -> None:
    (tmp_path / "proj.py").write_text(COREKIT_PROJ)
    env = {"BROKER": celery_worker}
    out = run_cli("-A", "proj", "inspect", "ping", "-d", THEIRS, "-t", "20", cwd=tmp_path,
                  env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"->  {THEIRS}: OK\n        pong\n\n1 node online.\n"
    out = run_cli("-A", "proj", "inspect", "registered", "-d", THEIRS, "-t", "20", "-j",
                  cwd=tmp_path, env=env)
    assert json.loads(out.stdout) == {THEIRS: ["proj.add"]}
    out = run_cli("-A", "proj", "control", "rate_limit", "proj.add", "5/s", "-d", THEIRS,
                  "-t", "20", cwd=tmp_path, env=env)
    assert out.returncode == 0 and out.stdout.startswith(f"->  {THEIRS}: OK"), out
    out = run_cli("-A", "proj", "status", "-t", "1", cwd=tmp_path, env=env)
    assert out.returncode == 0 and f"->  {THEIRS}: OK" in out.stdout


def test_a_malformed_message_on_kombus_channel_is_ignored(redis_url: str,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    import redis

    app = Corekit("proj", broker=redis_url, backend="memory://")
    client = redis.Redis.from_url(redis_url)
    db = client.connection_pool.connection_kwargs.get("db", 0)
    with start_worker(app, hostname=OURS):
        assert client.publish(f"/{db}.celery.pidbox", b"{not json") == 1  # the worker hears
        assert app.control.inspect(destination=[OURS], timeout=20).ping() == {
            OURS: {"ok": "pong"}}
    app.close()
    assert "Ignoring a malformed kombu message" in caplog.text
    assert "broadcast read failed" not in caplog.text
