"""``--log-format json`` and ``--logfile`` reopened on SIGHUP (logrotate's
create mode) for the service commands, with real detached processes."""
from __future__ import annotations

import os
import signal
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest

from daemon_helpers import WAIT, Project, json_records, read_log, wait_for_line, wait_until

FIELDS = {"time", "level", "logger", "process", "pid", "message", "task_id", "task_name",
          "worker"}


@pytest.fixture
def proj(tmp_path: Path) -> Iterator[Project]:
    project = Project(tmp_path)
    yield project
    project.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_json_records_carry_the_task_and_the_worker(proj: Project, pool: str) -> None:
    pid = proj.detach("worker", "-P", pool, "-c", "2", "-n", "j1@%h", "-l", "info",
                      "--log-format", "json", "--logfile=%n%I.log", pidfile="j.pid")
    loud, oops = proj.send("loud", 7), proj.send("oops")
    assert loud.get(timeout=WAIT) == 7 and oops.get(timeout=WAIT) == "logged"
    proj.stop(pid)
    files = sorted(proj.path.glob("j1*.log"))
    records = json_records(files)
    node = f"j1@{socket.gethostname()}"
    for record in records:
        assert FIELDS <= set(record), record
        assert record["worker"] == node
        when = datetime.fromisoformat(record["time"].replace("Z", "+00:00"))
        assert when.tzinfo == timezone.utc
        assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 120
    by_message = {r["message"]: r for r in records}
    for message, result in (("loud 7", loud), ("printed 7", loud), ("oops", oops)):
        record = by_message[message]
        assert record["task_id"] == result.id, record
        assert record["task_name"] == f"proj.{'oops' if result is oops else 'loud'}"
    assert "ZeroDivisionError: division by zero" in by_message["oops"]["exception"]
    assert by_message["oops"]["level"] == "ERROR" and by_message["loud 7"]["logger"] == "proj"
    ready = by_message[f"{node} ready."]
    assert ready["task_id"] is None and ready["task_name"] is None
    assert ready["process"] == "MainProcess" and "exception" not in ready
    if pool == "prefork":  # children log to their own %I file, with the task fields
        assert by_message["loud 7"]["process"] != "MainProcess"
        child_files = {f.name for f in files} - {"j1.log"}
        assert child_files and child_files <= {"j1-1.log", "j1-2.log"}
        assert all(r["pid"] != pid for f in files if f.name != "j1.log"
                   for r in json_records([f]))


def test_json_format_from_the_setting(proj: Project) -> None:
    config = proj.path / "jsonconf.py"
    config.write_text('log_format = "JSON"\n')
    pid = proj.detach("--config", "jsonconf", "worker", "-l", "info", "--logfile=w.log",
                      pidfile="w.pid")
    wait_for_line(proj.path / "w.log", "ready.")
    proj.stop(pid)
    assert any(r["message"].endswith(" ready.") for r in json_records([proj.path / "w.log"]))
    config.write_text('log_format = "yaml"\n')
    out = proj.run("--config", "jsonconf", "worker", "--detach")
    assert out.returncode == 1
    assert out.stderr.strip() == "Error: log_format 'yaml': use text or json"


def test_text_format_is_unchanged(proj: Project) -> None:
    pid = proj.detach("worker", "-l", "info", "--logfile=w.log", pidfile="w.pid")
    assert proj.send("loud", 3).get(timeout=WAIT) == 3
    proj.stop(pid)
    lines = read_log(proj.path / "w.log").splitlines()
    loud = [line for line in lines if line.endswith("loud 3")]
    assert len(loud) == 1
    assert loud[0].startswith("[") and "WARNING/MainProcess] proj.loud[" in loud[0]


@pytest.mark.parametrize("command", [["beat", "-n", "b1"], ["events", "--dump"],
                                     ["monitor", "--port", "PORT"]])
def test_sighup_reopens_the_log_file(proj: Project, command: list[str]) -> None:
    command = [str(free_port()) if word == "PORT" else word for word in command]
    pid = proj.detach(*command, "-l", "info", "--logfile=s.log", pidfile="s.pid")
    log, rotated = proj.path / "s.log", proj.path / "s.log.1"
    wait_until(lambda: read_log(log), "the first records")
    log.rename(rotated)  # logrotate: move, then tell the process
    os.kill(pid, signal.SIGHUP)
    wait_for_line(log, "SIGHUP received: log files reopened")
    os.kill(pid, signal.SIGUSR1)  # a later record goes to the new file too
    wait_for_line(log, "thread(s) of process")
    if command[0] == "events":  # and the service still works: a worker's events
        worker = proj.popen("worker", "--heartbeat-interval", "0.2")
        wait_for_line(log, "] heartbeat: active=")
        worker.terminate()
    old = rotated.read_text()
    assert "reopened" not in old and "thread(s)" not in old and old
    assert os.path.exists(f"/proc/{pid}")
    proj.stop(pid)
    assert not (proj.path / "s.pid").exists()
