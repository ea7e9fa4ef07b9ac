"""Several OS processes on one SQLite file: every message is delivered once,
a killed consumer's messages come back once its lease lapses, a result
backend counter hands out each value once, and all processes agree on where
a ``sqlite://`` URL points.

The transport-level tests drive `tests/helpers_sqlite/sqlite_client.py`;
the worker-level ones run real ``corekit worker`` processes.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from corekit import states
from corekit.exceptions import ImproperlyConfigured
from corekit.pluginmanager import default_manager
from corekit.serialization import Codecs
from corekit.messages import Message
from corekit.transport import Transport

PM = default_manager()
CLIENT = Path(__file__).resolve().parents[2] / "helpers_sqlite" / "sqlite_client.py"


def transport(url: str, **options: Any) -> Transport:
    t: Transport = PM.get("transports", "sqlite")(url, options)
    return t


def msg(n: int) -> Message:
    return Message(body=b"%d" % n, headers={"n": n}, properties={},
                   content_type="application/json", queue="q")


def wait_until(predicate: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes the test starts; killed if the test leaves them running."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()


def run_together(tmp_path: Path, procs: list[subprocess.Popen[str]],
                 commands: list[list[str]]) -> None:
    """Start one client process per ``[mode, url, *args]``, release them at
    once, and wait for all of them to succeed."""
    for i, command in enumerate(commands):
        ready, go = str(tmp_path / f"ready-{i}"), str(tmp_path / "go")
        args = [*command[:2], ready, go, *command[2:]]
        procs.append(subprocess.Popen([sys.executable, str(CLIENT), *args], text=True,
                                      stderr=subprocess.PIPE))
    wait_until(lambda: all((tmp_path / f"ready-{i}").exists() for i in range(len(commands))))
    (tmp_path / "go").touch()
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err


# -- transport level -------------------------------------------------------------
@pytest.mark.slow
def test_three_processes_share_3000_messages_each_delivered_once(
        tmp_path: Path, procs: list[subprocess.Popen[str]]) -> None:
    url = f"sqlite://{tmp_path / 'broker.db'}"
    producer = transport(url)
    producer.publish([msg(i) for i in range(3000)])
    outs = [tmp_path / f"out-{i}.txt" for i in range(3)]
    run_together(tmp_path, procs, [["drain", url, str(out), "10", "0.002"] for out in outs])
    shares = [[int(n) for n in out.read_text().split()] for out in outs]
    delivered = Counter(n for share in shares for n in share)
    assert sorted(delivered) == list(range(3000)) and set(delivered.values()) == {1}
    assert sum(1 for s in shares if s) >= 2, [len(s) for s in shares]  # they did overlap
    assert producer.queue_size("q") == 0
    producer.close()


@pytest.mark.slow
def test_processes_create_a_fresh_file_and_publish_at_once(
        tmp_path: Path, procs: list[subprocess.Popen[str]]) -> None:
    url = f"sqlite://{tmp_path / 'fresh' / 'broker.db'}"
    run_together(tmp_path, procs,
                 [["publish", url, str(i * 100), "100"] for i in range(4)])
    consumer = transport(url)
    got = consumer.fetch(["q"], 1000, 1.0)
    assert sorted(m.headers["n"] for m in got) == list(range(400))
    consumer.close()


@pytest.mark.slow
def test_a_killed_consumers_messages_come_back_after_its_lease(
        tmp_path: Path, procs: list[subprocess.Popen[str]]) -> None:
    url = f"sqlite://{tmp_path / 'broker.db'}"
    consumer = transport(url, lease_timeout=0.5, heartbeat=0.1)
    consumer.publish([msg(i) for i in range(20)])
    holder = subprocess.Popen([sys.executable, str(CLIENT), "hold", url, "5"],
                              stdout=subprocess.PIPE, text=True)
    procs.append(holder)
    assert holder.stdout is not None
    word, *held = holder.stdout.readline().split()
    assert word == "held" and len(held) == 5
    rest = consumer.fetch(["q"], 100, 1.0)
    assert len(rest) == 15 and not set(held) & {str(m.headers["n"]) for m in rest}
    consumer.ack(rest)
    # The holder heartbeats: three lease periods go by and nothing comes back.
    assert consumer.fetch(["q"], 100, 1.5) == []
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    killed_at = time.monotonic()
    back = consumer.fetch(["q"], 100, 5.0)
    assert sorted(str(m.headers["n"]) for m in back) == sorted(held)
    assert all(m.redelivered for m in back)
    assert time.monotonic() - killed_at < 3.0
    consumer.ack(back)
    consumer.close()


@pytest.mark.slow
def test_url_forms_resolve_against_the_working_directory(
        tmp_path: Path, procs: list[subprocess.Popen[str]]) -> None:
    for i, url in enumerate(["sqlite://", "sqlite://sub/rel.db"]):
        code = ("import sys; sys.path.insert(0, sys.argv[1]); import sqlite_client as c;"
                f"t = c.transport({url!r}); t.publish([c.message({i})])")
        subprocess.run([sys.executable, "-c", code, str(CLIENT.parent)], cwd=tmp_path,
                       check=True, timeout=60)
    for i, path in enumerate([tmp_path / "corekit.sqlite3", tmp_path / "sub" / "rel.db"]):
        absolute = transport(f"sqlite://{path}")  # sqlite:///abs/path: three slashes
        assert absolute.url.startswith("sqlite:///")
        [m] = absolute.fetch(["q"], 10, 1.0)
        assert m.headers["n"] == i
        absolute.close()


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    """SQLite forbids carrying a connection across fork(): the child of a
    process that used the transport must reconnect, not reuse the parent's."""
    t = transport(f"sqlite://{tmp_path / 'broker.db'}")
    t.publish([msg(0)])
    parents = t.db.conn()  # type: ignore[attr-defined]  # white box: the open connection
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code only
        try:
            fresh = t.db.conn() is not parents  # type: ignore[attr-defined]
            t.publish([msg(1)])
            os._exit(0 if fresh else 3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sorted(m.headers["n"] for m in t.fetch(["q"], 10, 1.0)) == [0, 1]
    t.close()


@pytest.mark.slow
def test_two_processes_incr_one_counter_each_value_once(
        tmp_path: Path, procs: list[subprocess.Popen[str]]) -> None:
    url = f"sqlite://{tmp_path / 'results.db'}"
    outs = [tmp_path / f"out-{i}.txt" for i in range(2)]
    run_together(tmp_path, procs, [["incr", url, "join", "200", str(out)] for out in outs])
    shares = [[int(n) for n in out.read_text().split()] for out in outs]
    assert sorted(shares[0] + shares[1]) == list(range(1, 401))
    assert all(share == sorted(share) for share in shares)


def test_memory_urls_are_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="memory://"):
        transport("sqlite://:memory:").publish([msg(1)])


def test_transport_and_backend_share_one_file(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'both.db'}"
    codecs = Codecs(PM.registry("serializers").values(), PM.registry("compressors").values())
    broker = transport(url)
    backend = PM.get("result_backends", "sqlite")(url, codecs, {})
    broker.publish([msg(1)])
    backend.store_result("t", "ok", states.SUCCESS)
    [m] = broker.fetch(["q"], 1, 1.0)
    broker.ack([m])
    assert backend.get_task_meta("t")["result"] == "ok" and broker.queue_size("q") == 0
    broker.close()
    backend.close()
