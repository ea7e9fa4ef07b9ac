"""``corekit multi`` end to end: detached workers on a SQLite broker,
started, sent tasks, stopped under a running task, restarted, killed."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from helpers import run_cli

HOST = socket.gethostname()

PROJ = '''
import os, time
from corekit import Corekit

app = Corekit("proj", broker_heartbeat=0.2, broker_lease_timeout=2)

@app.task
def add(x, y):
    return x + y

@app.task
def where():
    return os.getpid()

@app.task
def spawn():
    import subprocess
    return subprocess.Popen(["sleep", "60"]).pid

@app.task
def wait_for(path):
    open(path + ".started", "w").close()
    deadline = time.monotonic() + 30
    while not os.path.exists(path):
        assert time.monotonic() < deadline, "never released"
        time.sleep(0.02)
    return "released"
'''


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


def wait_until(check: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.02)


def read_pid(path: Path) -> int:
    return int(path.read_text())


class Project:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.broker = f"sqlite://{path / 'b.sqlite3'}"
        self.app_args = ["-A", "proj", "-b", self.broker]

    def multi(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run_cli("multi", *args, cwd=self.path, timeout=timeout)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        out = run_cli(*self.app_args, *args, cwd=self.path)
        assert out.returncode == 0, out.stderr
        return out

    def call(self, name: str, *args: Any) -> str:
        return self.cli("call", name, "--args", json.dumps(list(args))).stdout.strip()

    def result(self, task_id: str) -> Any:
        return json.loads(self.cli("result", task_id, "--wait", "20").stdout)

    def pids(self) -> dict[str, int]:
        return {p.stem: read_pid(p) for p in sorted(self.path.glob("*.pid"))}


@pytest.fixture
def proj(tmp_path: Path) -> Iterator[Project]:
    (tmp_path / "proj.py").write_text(PROJ)
    project = Project(tmp_path)
    yield project
    for pidfile in tmp_path.rglob("*.pid"):  # whatever a failed test left running
        try:
            os.killpg(os.getpgid(read_pid(pidfile)), signal.SIGKILL)
        except (ValueError, OSError):
            pass


def test_start_tasks_and_a_stop_that_waits_for_the_running_task(proj: Project) -> None:
    out = proj.multi("start", "2", *proj.app_args, "-P", "threads", "-c:1", "1", "-c:2", "3",
                     "-l", "info")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines() == [out.stdout.splitlines()[0], "> Starting nodes...",
                                       f"\t> corekit1@{HOST}: OK", f"\t> corekit2@{HOST}: OK"]
    pids = proj.pids()
    assert sorted(pids) == ["corekit1", "corekit2"] and all(map(alive, pids.values()))
    for node in ("corekit1", "corekit2"):  # start returns once the pid file is written
        log = proj.path / f"{node}.log"
        wait_until(lambda: f"{node}@{HOST} ready." in log.read_text(), f"{node} ready")
    # the per-node concurrency, from the workers themselves
    stats = json.loads(proj.cli("inspect", "stats", "--json").stdout)
    assert {name: s["pool"]["max-concurrency"] for name, s in stats.items()} == {
        f"corekit1@{HOST}": 1, f"corekit2@{HOST}": 3}
    ids = [proj.call("proj.add", i, i) for i in range(4)]
    assert [proj.result(i) for i in ids] == [0, 2, 4, 6]
    ran_in = {proj.result(proj.call("proj.where")) for _ in range(4)}
    assert ran_in <= set(pids.values())

    release = proj.path / "release"
    task_id = proj.call("proj.wait_for", str(release))
    wait_until(Path(f"{release}.started").exists, "the task started")
    stop = subprocess.Popen([sys.executable, "-m", "corekit", "multi", "stop", "2"],
                            cwd=proj.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    logs = [proj.path / "corekit1.log", proj.path / "corekit2.log"]
    wait_until(lambda: sum("warm shutdown" in p.read_text() for p in logs) == 2,
               "both nodes got TERM")
    wait_until(lambda: len([p for p in logs if "stopped." in p.read_text()]) == 1,
               "the idle node stopped")
    assert stop.poll() is None, "stop did not wait for the running task"
    release.touch()
    output = stop.communicate(timeout=30)[0]
    assert stop.returncode == 0, output
    assert f"\t> corekit1@{HOST}: DOWN" in output and f"\t> corekit2@{HOST}: DOWN" in output
    assert "> Waiting for 2 nodes" in output
    assert proj.result(task_id) == "released"
    assert not list(proj.path.glob("*.pid"))
    assert not any(map(alive, pids.values()))


def test_already_running_restart_and_kill(proj: Project) -> None:
    args = ["2", *proj.app_args, "-P", "prefork", "-c", "2"]
    assert proj.multi("start", *args).returncode == 0
    first = proj.pids()
    again = proj.multi("start", *args)
    assert again.returncode == 1
    assert f"\t> corekit1@{HOST}: already running (pid {first['corekit1']})" in again.stdout
    assert proj.pids() == first

    out = proj.multi("restart", *args)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"> Restarting node corekit1@{HOST}: OK" in out.stdout
    second = proj.pids()
    assert set(second.values()).isdisjoint(first.values())
    assert not any(map(alive, first.values())) and all(map(alive, second.values()))
    assert proj.result(proj.call("proj.add", 2, 3)) == 5

    pool = {pid: children(pid) for pid in second.values()}
    assert all(len(kids) == 2 for kids in pool.values()), pool  # -c 2 pool processes
    spawned = proj.result(proj.call("proj.spawn"))  # a task's own child process
    assert alive(spawned)
    out = proj.multi("kill", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"Sending KILL to node corekit1@{HOST} ({second['corekit1']})" in out.stdout
    assert not list(proj.path.glob("*.pid"))
    everyone = [*second.values(), *(k for kids in pool.values() for k in kids), spawned]
    wait_until(lambda: not any(map(alive, everyone)), "the nodes, their pool and what "
                                                      "their tasks started are gone")


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True)
    return [int(p) for p in out.stdout.split()]


def test_a_stale_pid_file_is_taken_over_and_a_failing_node_says_why(proj: Project) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    (proj.path / "corekit1.pid").write_text(f"{dead.pid}\n")
    out = proj.multi("start", "1", *proj.app_args, "-P", "threads")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"stale pid file removed (process {dead.pid} is not running)" in out.stdout
    pid = proj.pids()["corekit1"]
    assert alive(pid) and pid != dead.pid
    assert proj.multi("stopwait", "1").returncode == 0
    assert not alive(pid)

    out = proj.multi("start", "1", "-A", "nosuchmodule", "-b", proj.broker, "--pidfile",
                     "run/%n.pid", "--logfile", "logs/%n.log")
    assert out.returncode == 1
    assert f"\t> corekit1@{HOST}: FAILED (exit status 1: " in out.stdout
    assert "cannot load app module 'nosuchmodule'" in out.stdout
    assert (proj.path / "run").is_dir() and (proj.path / "logs").is_dir()
    assert not list((proj.path / "run").iterdir())


def test_stop_never_signals_what_is_not_its_worker(proj: Project) -> None:
    """A pid file naming a recycled pid (another program now), pid 1, or
    garbage: nothing is signalled; garbage and the recycled pid's file are
    stale (removed), pid 1's is refused and kept."""
    other = subprocess.Popen(["sleep", "30"])
    try:
        (proj.path / "corekit1.pid").write_text(f"{other.pid}\n")
        (proj.path / "corekit2.pid").write_text("1\n")
        (proj.path / "corekit3.pid").write_text("not a pid\n")
        out = proj.multi("stop", "4")
        assert out.returncode == 1
        lines = out.stdout.splitlines()
        assert f"\t> corekit1@{HOST}: DOWN (stale pid file removed: pid {other.pid} is now " \
               "another program (sleep 30))" in lines
        assert any(line.startswith(f"\t> corekit2@{HOST}: FAILED (pid file ") and
                   "names pid 1, which is not a worker: not touched)" in line for line in lines)
        assert any(line.startswith(f"\t> corekit3@{HOST}: DOWN (stale pid file removed: ")
                   for line in lines)
        assert f"\t> corekit4@{HOST}: DOWN (not running: no pid file)" in lines
        assert other.poll() is None
        assert [p.name for p in proj.path.glob("*.pid")] == ["corekit2.pid"]
        assert proj.multi("kill", "2").returncode == 1 and other.poll() is None
    finally:
        other.kill()
        other.wait()
        (proj.path / "corekit2.pid").unlink()


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "polling"])
def test_waiting_sees_each_exit_in_order_zombies_included(
        pidfd: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """stop's wait: with a pidfd, or looking every 50 ms where there is none;
    a process that exited but was not reaped (a zombie) counts as gone."""
    from corekit.cli import multi_procs

    if not pidfd:
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    slow, fast = (subprocess.Popen(["sleep", s]) for s in ("0.6", "0.1"))
    try:  # neither is reaped until the end: both become zombies
        assert list(multi_procs.wait_for_exit({"slow": slow.pid, "fast": fast.pid},
                                              timeout=20)) == ["fast", "slow"]
        assert not multi_procs.alive(slow.pid) and os.path.exists(f"/proc/{slow.pid}")
        stuck = subprocess.Popen(["sleep", "30"])
        started = time.monotonic()
        assert list(multi_procs.wait_for_exit({"stuck": stuck.pid}, timeout=0.3)) == []
        assert 0.3 <= time.monotonic() - started < 5
        stuck.kill()
        stuck.wait()
    finally:
        for proc in (slow, fast):
            proc.wait()
