"""``--detach``, ``--pidfile``, ``--logfile``, ``--umask``, ``--workdir`` and
the signals of ``corekit worker`` (SIGTERM, SIGHUP restart in place,
SIGUSR1 stacks), with real processes on a SQLite broker file."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from daemon_helpers import WAIT, Project, alive, read_log, wait_for_line, wait_until


@pytest.fixture
def proj(tmp_path: Path) -> Iterator[Project]:
    project = Project(tmp_path)
    yield project
    project.close()


def test_detached_worker_runs_tasks_and_stops_on_sigterm(proj: Project) -> None:
    queued = [proj.send("add", i, i) for i in range(20)]
    pid = proj.detach("worker", "-n", "w1@%h", "--logfile=%n.log", "-l", "info", "-c", "2",
                      pidfile="%n.pid", expanded="w1.pid")
    pidfile, logfile = proj.path / "w1.pid", proj.path / "w1.log"
    assert pidfile.read_text() == f"{pid}\n"
    assert pid != os.getpid() and alive(pid)
    assert [r.get(timeout=WAIT) for r in queued] == [2 * i for i in range(20)]
    slow = proj.send("sleepy", str(proj.path / "started"), 1.0)
    wait_until((proj.path / "started").exists, "the slow task to start")
    proj.stop(pid)  # warm: the running task finishes and its result is stored
    assert slow.get(timeout=WAIT) == "slept"
    assert not pidfile.exists()
    log = read_log(logfile)
    assert "w1@" in log and "ready." in log and "SIGTERM received: warm shutdown" in log
    assert "stopped." in log


def test_detached_process_is_in_its_own_session(proj: Project) -> None:
    pid = proj.detach("worker", "--logfile=w.log")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ppid, session = int(fields[1]), int(fields[3])
    assert session != os.getsid(0) and session != pid  # setsid, then forked again
    assert ppid != os.getpid()
    for fd in (0, 1, 2):
        assert os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/null"
    proj.stop(pid)


def test_detached_without_logfile_logs_to_node_name_file(proj: Project) -> None:
    pid = proj.detach("worker", "-n", "solo1@%h", "-l", "info")
    wait_for_line(proj.path / "solo1.log", "ready.")
    proj.stop(pid)


def test_parent_reports_a_child_that_fails_before_it_started(proj: Project) -> None:
    out = proj.run("-A", "no_such_module", "worker", "--detach", "--pidfile=w.pid",
                   "--logfile=w.log")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"Error: cannot load app module 'no_such_module': no module named 'no_such_module' "
        f"(looked in {proj.path} and sys.path)"]
    assert not (proj.path / "w.pid").exists()
    out = proj.run("worker", "--detach", "-Q", "nowhere,", "-X", "nowhere")
    assert out.returncode == 1 and "Error: no queues left" in out.stderr


def test_live_pid_file_is_refused(proj: Project) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (proj.path / "w.pid").write_text(f"{holder.pid}\n")
        for args in (("--detach",), ()):
            out = proj.run("worker", "--pidfile=w.pid", "--logfile=w.log", *args)
            assert out.returncode == 1, out
            assert out.stderr.strip() == (f"Error: pid file {proj.path / 'w.pid'} is held by "
                                          f"running process {holder.pid}")
        assert (proj.path / "w.pid").read_text() == f"{holder.pid}\n"
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("content", ["dead", "garbage\n", "", "-5\n", "9" * 100])
def test_stale_pid_file_is_taken_over(proj: Project, content: str) -> None:
    if content == "dead":
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        content = f"{gone.pid}\n"
    (proj.path / "w.pid").write_text(content)
    pid = proj.detach("worker", "--logfile=w.log", pidfile="w.pid")
    assert (proj.path / "w.pid").read_text() == f"{pid}\n"
    assert "is stale" in wait_for_line(proj.path / "w.log", "removing it")
    assert proj.send("add", 1, 2).get(timeout=WAIT) == 3
    proj.stop(pid)
    assert not (proj.path / "w.pid").exists()


def test_umask_and_workdir(proj: Project, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # -A proj is found in the workdir; relative files land there
    pid = proj.detach("worker", "--workdir", str(proj.path), "--umask", "0o027",
                      "--logfile=w.log", pidfile="w.pid", cwd=elsewhere)
    assert Path(f"/proc/{pid}/cwd").resolve() == proj.path.resolve()
    for name in ("w.pid", "w.log"):
        assert stat.S_IMODE((proj.path / name).stat().st_mode) == 0o640, name
    mask = [line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("Umask:")]
    assert mask == ["Umask:\t0027"]
    assert proj.send("add", 2, 2).get(timeout=WAIT) == 4
    assert list(elsewhere.iterdir()) == []
    proj.stop(pid)


def test_bad_daemon_options_are_usage_errors(proj: Project) -> None:
    for args, message in ((("--workdir", "/no/such/dir"), "'/no/such/dir' does not exist"),
                          (("--umask", "999"), "'999' is not an octal mask"),
                          (("--umask", "0o1000"), "not a mask between 0 and 777"),
                          (("--uid", "no-such-user-x"), "no user named 'no-such-user-x'"),
                          (("--gid", "no-such-group-x"), "no group named 'no-such-group-x'"),
                          (("--log-format", "xml"), "invalid choice: 'xml'")):
        commands = ("worker", "beat", "events", "monitor") if args[0] == "--umask" else ("worker",)
        for command in commands:
            out = proj.run(command, *args)
            assert out.returncode == 2, (command, args, out)
            assert message in out.stderr.splitlines()[-1], (command, out.stderr)


def test_sighup_restarts_the_worker_in_place_with_new_code(proj: Project) -> None:
    assert proj.send("version").id  # queued before the worker starts
    pid = proj.detach("worker", "--logfile=w.log", "-l", "info", "-c", "2", pidfile="w.pid")
    log = proj.path / "w.log"
    assert proj.app.AsyncResult(proj.send("version").id).get(timeout=WAIT) == "one"
    marker = proj.path / "started"
    slow = proj.send("sleepy", str(marker), 1.5)
    wait_until(marker.exists, "the slow task to start")
    source = proj.path / "proj.py"
    source.write_text(source.read_text().replace('VERSION = "one"', 'VERSION = "version two"'))
    before = len(read_log(log))
    os.kill(pid, signal.SIGHUP)
    assert slow.get(timeout=WAIT) == "slept"  # the running task finished, result stored
    wait_for_line(log, "ready.", start=before)
    assert proj.send("version").get(timeout=WAIT) == "version two"
    assert alive(pid) and (proj.path / "w.pid").read_text() == f"{pid}\n"
    cmdline = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    assert "--detach" not in cmdline and "--pidfile=w.pid" in cmdline
    text = read_log(log)[before:]
    assert "SIGHUP received: restarting" in text and "restarting in place" in text
    # a reload while it restarts (SIGHUP's default would kill it) restarts it again
    before = len(read_log(log))
    os.kill(pid, signal.SIGHUP)
    wait_for_line(log, "restarting in place", start=before)
    os.kill(pid, signal.SIGHUP)
    wait_until(lambda: read_log(log)[before:].count("restarting in place") == 2,
               "a second restart")
    assert proj.send("add", 5, 5).get(timeout=WAIT) == 10
    assert alive(pid) and "ready." in read_log(log)[before:]
    proj.stop(pid)
    assert not (proj.path / "w.pid").exists()


def test_sigusr1_logs_every_threads_stack(proj: Project) -> None:
    pid = proj.detach("worker", "--logfile=w.log", "-c", "2", "-P", "threads",
                      pidfile="w.pid")
    assert proj.send("add", 1, 1).get(timeout=WAIT) == 2
    os.kill(pid, signal.SIGUSR1)
    log = wait_for_line(proj.path / "w.log", "thread(s) of process")
    dump = log[log.index("thread(s) of process"):]
    threads = [line for line in dump.splitlines() if line.startswith("Thread ")]
    assert len(threads) >= 3 and any(t.startswith("Thread MainThread") for t in threads)
    assert 'File "' in dump and "WARNING" in log
    assert proj.send("add", 2, 3).get(timeout=WAIT) == 5  # nothing stopped
    assert alive(pid)
    proj.stop(pid)


def test_sighup_in_a_foreground_worker_keeps_its_terminal_streams(proj: Project) -> None:
    output = proj.path / "output"
    proc = proj.popen("worker", "-l", "info", "--pidfile=f.pid", output=output)
    pidfile = proj.path / "f.pid"
    wait_for_line(output, "ready.")
    assert proj.send("add", 1, 1).get(timeout=WAIT) == 2
    proc.send_signal(signal.SIGHUP)
    wait_until(lambda: read_log(output).count("ready.") == 2, "the restarted worker")
    assert proj.send("version").get(timeout=WAIT) == "one"
    assert pidfile.read_text() == f"{proc.pid}\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(WAIT) == 0
    text = read_log(output)
    assert text.count("[tasks]") == 2 and "restarting in place" in text  # banner, log
    assert not pidfile.exists()
