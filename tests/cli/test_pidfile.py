"""`corekit.cli.pidfile.Pidfile` and `corekit.logfiles.node_format`, in process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from corekit.cli.pidfile import Pidfile, PidfileError
from corekit.logfiles import node_format


def test_acquire_writes_the_pid_and_release_removes_it(tmp_path: Path) -> None:
    pidfile = Pidfile(str(tmp_path / "x.pid"))
    pidfile.acquire()
    assert (tmp_path / "x.pid").read_text() == f"{os.getpid()}\n"
    pidfile.release()
    assert not (tmp_path / "x.pid").exists()


def test_a_file_naming_us_is_kept(tmp_path: Path) -> None:
    """A worker restarted in place (same pid) finds its own pid file."""
    (tmp_path / "x.pid").write_text(f"{os.getpid()}\n")
    pidfile = Pidfile(str(tmp_path / "x.pid"))
    pidfile.acquire()
    assert pidfile.owned and (tmp_path / "x.pid").read_text() == f"{os.getpid()}\n"


def test_release_leaves_a_file_another_process_took(tmp_path: Path) -> None:
    pidfile = Pidfile(str(tmp_path / "x.pid"))
    pidfile.acquire()
    (tmp_path / "x.pid").write_text("1\n")
    pidfile.release()
    assert (tmp_path / "x.pid").read_text() == "1\n"


def test_a_live_holder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.pid").write_text(f"{os.getppid()}\n")
    with pytest.raises(PidfileError, match=f"is held by running process {os.getppid()}$"):
        Pidfile(str(tmp_path / "x.pid")).acquire()


@pytest.mark.parametrize("content", [b"", b"abc\n", b"0\n", b"-1\n", b"\xff\xfe", b"1" * 200])
def test_garbage_is_stale(tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
                          ) -> None:
    (tmp_path / "x.pid").write_bytes(content)
    Pidfile(str(tmp_path / "x.pid")).acquire()
    assert (tmp_path / "x.pid").read_text() == f"{os.getpid()}\n"
    assert "does not hold a pid" in caplog.text


def test_a_dead_pid_is_stale(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / "x.pid").write_text(f"{gone.pid}\n")
    Pidfile(str(tmp_path / "x.pid")).acquire()
    assert f"process {gone.pid} is not running" in caplog.text


def test_unwritable_places_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(PidfileError, match="cannot create pid file .*No such file"):
        Pidfile(str(tmp_path / "no" / "x.pid")).acquire()
    (tmp_path / "d.pid").mkdir()
    with pytest.raises(PidfileError, match="is a directory"):
        Pidfile(str(tmp_path / "d.pid")).acquire()


def test_node_format() -> None:
    node = "w1@box.example.com"
    assert node_format("%n.pid", node) == "w1.pid"
    assert node_format("%N-%h-%d", node) == "w1@box.example.com-box.example.com-example.com"
    assert node_format("%n%I.log", node) == "w1.log"
    assert node_format("%n%I.log", node, index=2) == "w1-2.log"
    assert node_format("%n-%i.log", node) == "w1-0.log"
    assert node_format("%n-%i.log", node, index=3) == "w1-3.log"
    assert node_format("100%%-%x-%", node) == "100%-%x-%"
