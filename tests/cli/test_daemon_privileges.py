"""``--uid``/``--gid``: a detached worker started by root runs as nobody
and nogroup (read from /proc), once its pid and log files are open."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from daemon_helpers import WAIT, Project, read_log, wait_for_line, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="dropping privileges needs root: run the suite as root")


@pytest.fixture
def shared() -> Iterator[Project]:
    """A project in a directory nobody may write (the broker file is
    created by the worker once it runs as nobody)."""
    path = Path(tempfile.mkdtemp(prefix="corekit-privileges-"))
    path.chmod(0o777)
    project = Project(path)
    yield project
    project.close()
    shutil.rmtree(path)


def ids(pid: int) -> dict[str, list[int]]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {line.split(":")[0]: [int(v) for v in line.split(":")[1].split()]
            for line in status if line.split(":")[0] in ("Uid", "Gid", "Groups")}


def preload(project: Project) -> dict[str, str]:
    """Run the worker once as root and note every module it imported: the
    worker run as nobody imports them with the app, since the interpreter
    of this machine may live where nobody can read (/root)."""
    record = project.path / "modules.txt"
    pid = project.detach("worker", "--logfile=root.log", pidfile="root.pid",
                         env={"TEST_RECORD": str(record)})
    assert project.send("add", 1, 1).get(timeout=WAIT) == 2
    project.stop(pid)
    for leftover in project.path.glob("broker.db*"):
        leftover.unlink()
    project.app.close()
    project._app = None
    return {"TEST_PRELOAD": str(record)}


def test_uid_and_gid_drop_privileges(shared: Project) -> None:
    env = preload(shared)
    pid = shared.detach("worker", "--uid", "nobody", "--gid", "nogroup", "-l", "info",
                        "--logfile=w.log", pidfile="w.pid", env=env)
    assert ids(pid) == {"Uid": [65534] * 4, "Gid": [65534] * 4, "Groups": [65534]}
    log = shared.path / "w.log"
    wait_for_line(log, "ready.")
    assert (log.stat().st_uid, log.stat().st_gid) == (65534, 65534)  # handed over
    assert (shared.path / "w.pid").stat().st_uid == 0  # written as root
    assert shared.send("add", 2, 3).get(timeout=WAIT) == 5, read_log(log)
    shared.stop(pid)
    assert not (shared.path / "w.pid").exists()


def test_uid_alone_takes_the_users_group(shared: Project) -> None:
    env = preload(shared)
    pid = shared.detach("worker", "--uid", "65534", "--logfile=w.log", pidfile="w.pid",
                        env=env)
    assert ids(pid) == {"Uid": [65534] * 4, "Gid": [65534] * 4, "Groups": [65534]}
    wait_for_line(shared.path / "w.log", "ready.")
    shared.stop(pid)


def test_gid_alone_keeps_the_user(shared: Project) -> None:
    pid = shared.detach("events", "--dump", "--gid", "nogroup", "--logfile=e.log",
                        pidfile="e.pid")
    wait_until(lambda: read_log(shared.path / "e.log"), "the first records")
    assert ids(pid) == {"Uid": [0] * 4, "Gid": [65534] * 4, "Groups": [65534]}
    shared.stop(pid)
