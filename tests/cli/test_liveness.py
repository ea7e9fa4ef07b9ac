"""``corekit status -d NODE`` as a liveness probe: exit status 0 while that
worker answers within --timeout, 1 with one ``Error:`` line once it stopped,
and 1 at once, with the reason, when the broker is down."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from helpers import run_cli
from service_helpers import PrivateRedis, WorkerProcess

PROJ = '''
from corekit import Corekit
app = Corekit("proj")

@app.task
def add(x, y):
    return x + y
'''
NODE = "probe@box"


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    (tmp_path / "proj.py").write_text(PROJ)
    return tmp_path


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def probe(proj: Path, broker: str, *args: str) -> Any:
    started = time.monotonic()
    done = run_cli("-A", "proj", "-b", broker, "status", *args, cwd=proj, timeout=30)
    done.took = time.monotonic() - started
    return done


def check_probe(proj: Path, broker: str, stop_broker: Any) -> None:
    worker = WorkerProcess(proj, "-A", "proj", "-b", broker, "worker", "-P", "threads",
                           "-c", "1", "-n", NODE, "--no-banner", "-l", "info")
    try:
        worker.wait_for("ready")
        up = probe(proj, broker, "-d", NODE, "-t", "5")
        assert up.returncode == 0, up.stderr
        assert up.stdout == f"->  {NODE}: OK\n\n1 node online.\n"

        # another node named beside it: the probe fails, naming the missing one
        both = probe(proj, broker, "-d", f"{NODE},ghost@box", "-t", "1")
        assert both.returncode == 1 and f"->  {NODE}: OK" in both.stdout
        assert both.stderr == ("Error: 1 of 2 nodes did not reply within time constraint "
                               "(waited 1 s for ghost@box).\n")
        # a name without @host never matches: the message says what a name is
        short = probe(proj, broker, "-d", "probe", "-t", "0.5")
        assert short.returncode == 1 and "name@host" in short.stderr
    finally:
        assert worker.stop() == 0, worker.output

    down = probe(proj, broker, "-d", NODE, "-t", "1")
    assert down.returncode == 1 and down.stdout == ""
    assert down.stderr == ("Error: No nodes replied within time constraint "
                           f"(waited 1 s for {NODE}).\n")
    assert down.took < 10  # the timeout, the interpreter's start-up and the app's import

    stop_broker()
    gone = probe(proj, broker, "-d", NODE, "-t", "5")
    assert gone.returncode == 1 and gone.stdout == ""
    assert gone.stderr.startswith("Error: cannot reach the broker at "), gone.stderr
    assert len(gone.stderr.splitlines()) == 1
    assert gone.took < 5  # refused at once: it does not wait out the timeout


def test_status_probe_on_redis(proj: Path, redis: PrivateRedis) -> None:
    check_probe(proj, redis.url, redis.stop)
    # Connection refused is the reason given
    out = probe(proj, redis.url, "-d", NODE)
    assert "Connection refused" in out.stderr


def test_status_probe_on_sqlite(proj: Path, tmp_path: Path) -> None:
    db = tmp_path / "broker.db"
    broker = f"sqlite://{db}"

    def stop_broker() -> None:  # an embedded broker has no server: its file cannot open
        for path in tmp_path.glob("broker.db*"):
            path.unlink()
        db.mkdir()

    check_probe(proj, broker, stop_broker)


def test_inspect_ping_probe_exits_1_for_a_node_that_does_not_answer(proj: Path,
                                                                     tmp_path: Path) -> None:
    out = run_cli("-A", "proj", "-b", f"sqlite://{tmp_path / 'b.db'}", "inspect", "ping",
                  "-d", NODE, "-t", "0.5", cwd=proj)
    assert out.returncode == 1
    assert out.stderr == "Error: No nodes replied within time constraint.\n"
