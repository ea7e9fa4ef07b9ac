"""extra/supervisor/: the real supervisord (pip's) runs corekit-worker.conf
and corekit-beat.conf, rendered for a project in a temporary directory.
A task running while ``supervisorctl stop`` stops the worker finishes and
its result is stored; tasks sent while it is stopped run after
``supervisorctl start``; nothing is left running after supervisord's
shutdown.  SIGHUP (supervisorctl signal HUP) restarts the worker in place."""
from __future__ import annotations

import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from corekit import Corekit
from corekit.cli import build_parser
from extra_helpers import EXTRA, INSTALLED, PROJECT_DIR, corekit_command, group_alive, service_env
from servers import unavailable
from service_helpers import wait_until

SUPERVISOR = EXTRA / "supervisor"
URLS = ('redis://localhost:6379/0', 'redis://localhost:6379/1')


def binary(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        unavailable(f"{name} is not installed: pip install supervisor (in the test extra; "
                    "scripts/test.sh installs it)")
    return found


def render(text: str, replacements: dict[str, str]) -> str:
    """*text* with each key replaced; a key the file no longer holds fails
    the test (the rendering would silently test something else)."""
    for old, new in replacements.items():
        assert old in text, f"{old!r} is no longer in the file"
        text = text.replace(old, new)
    return text


def program(name: str) -> dict[str, str]:
    """The keys of ``[program:NAME]`` in NAME.conf."""
    section, keys = None, {}
    for line in (SUPERVISOR / f"{name}.conf").read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif section == f"program:{name}" and "=" in line and not line.startswith(";"):
            key, _, value = line.partition("=")
            keys[key.strip()] = value.strip()
    return keys


def command_argv(name: str) -> list[str]:
    """The program's command as supervisor runs it: %(...)s expanded, %% -> %."""
    command = program(name)["command"] % {"process_num": 0, "program_name": name}
    return shlex.split(command)


@pytest.mark.parametrize("name", ["corekit-worker", "corekit-beat"])
def test_program_commands_are_valid_for_the_current_cli(name: str) -> None:
    argv = command_argv(name)
    assert argv[0] == INSTALLED
    try:
        args = build_parser().parse_args(argv[1:])
    except SystemExit as exc:
        pytest.fail(f"{shlex.join(argv)}: not valid for the current CLI ({exc})")
    keys = program(name)
    assert args.command == name.split("-")[1]
    assert keys["stopsignal"] == "TERM" and keys["killasgroup"] == "true"
    assert keys["directory"] == PROJECT_DIR and keys["autorestart"] == "true"
    if name == "corekit-worker":
        assert args.hostname == "worker00@%h"
        assert int(keys["stopwaitsecs"]) > args.time_limit  # running tasks may finish
        # the stop signal to the worker alone: its pool processes die of TERM
        assert keys["stopasgroup"] == "false"
    assert int(program("corekit-beat")["priority"]) > int(program("corekit-worker")["priority"])


@pytest.fixture(params=["sqlite", "redis"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite://{tmp_path / 'broker.sqlite3'}"


class Supervisord:
    """supervisord in the foreground (-n) with extra/supervisor's files,
    rendered into *directory* for the project in *proj_dir*."""

    def __init__(self, directory: Path, proj_dir: Path, broker_url: str) -> None:
        self.conf = directory / "supervisord.conf"
        self.log = directory / "log"
        (directory / "conf.d").mkdir()
        self.log.mkdir()
        self.conf.write_text(render((SUPERVISOR / "supervisord.conf").read_text(), {
            "/run/supervisor.sock": str(directory / "s.sock"),
            "/run/supervisord.pid": str(directory / "supervisord.pid"),
            "/var/log/supervisor": str(self.log),
            "/etc/supervisor/conf.d": str(directory / "conf.d")}))
        url = broker_url.replace("%", "%%")
        for name in ("corekit-worker", "corekit-beat"):
            text = render((SUPERVISOR / f"{name}.conf").read_text(), {
                INSTALLED: shlex.join(corekit_command()), PROJECT_DIR: str(proj_dir),
                "user=corekit\n": "", URLS[0]: url, URLS[1]: url,
                "/var/log/corekit": str(self.log),
                # `supervisorctl start` waits startsecs: 1 s is enough here (not 3)
                "startsecs=3": "startsecs=1"})
            (directory / "conf.d" / f"{name}.conf").write_text(text)
        self.proc = subprocess.Popen([binary("supervisord"), "-n", "-c", str(self.conf)],
                                     env=service_env({}), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def ctl(self, *args: str) -> str:
        done = subprocess.run([binary("supervisorctl"), "-c", str(self.conf), *args],
                              capture_output=True, text=True, timeout=120)
        return done.stdout + done.stderr

    def read(self, name: str) -> str:
        path = self.log / name
        return path.read_text() if path.exists() else ""

    def main_log(self) -> str:
        return self.read("supervisord.log")

    def shutdown(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # as supervisorctl shutdown does
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def supervisord(tmp_path: Path, proj_dir: Path, broker_url: str) -> Iterator[Supervisord]:
    (proj_dir / "ticks").unlink(missing_ok=True)
    sup = Supervisord(tmp_path, proj_dir, broker_url)
    try:
        yield sup
    finally:
        sup.shutdown()


def worker_log(sup: Supervisord) -> str:
    return sup.read("corekit-worker_00.log")


def test_supervisor_stops_the_worker_warmly_and_loses_nothing(
        supervisord: Supervisord, proj_dir: Path, broker_url: str) -> None:
    sup = supervisord
    wait_until(lambda: re.search(r"worker00@\S+ ready\.", worker_log(sup)), 30,
               "the worker ready")
    client = Corekit("client", broker=broker_url, backend=broker_url)
    try:
        assert client.send_task("proj.add", (2, 3)).get(timeout=30) == 5
        # a restart in place: the same process serves again
        worker_pid = sup.ctl("pid", "corekit-worker:corekit-worker_00").strip()
        out = sup.ctl("signal", "HUP", "corekit-worker:*")
        assert "corekit-worker_00: signalled" in out, out
        wait_until(lambda: len(re.findall(r"worker00@\S+ ready\.", worker_log(sup))) == 2,
                   30, "the worker ready again")
        assert sup.ctl("pid", "corekit-worker:corekit-worker_00").strip() == worker_pid
        assert client.send_task("proj.add", (3, 4)).get(timeout=30) == 7
        wait_until(lambda: (proj_dir / "ticks").exists(), 30, "the beat's periodic run")
        log = sup.main_log()
        assert log.index("spawned: 'corekit-worker_00'") < log.index("spawned: 'corekit-beat'")
        pids = [int(p) for p in sup.ctl("pid", "all").split()]
        assert len(pids) == 2, pids

        # stopped under a running task: it finishes, its result is stored
        marker = proj_dir / f"supervisor-sleepy-{broker_url[:5]}"
        marker.unlink(missing_ok=True)
        running = client.send_task("proj.sleepy", (marker.name, 1.5))
        wait_until(marker.exists, 30, "sleepy started")
        out = sup.ctl("stop", "corekit-worker:*")
        assert "corekit-worker_00: stopped" in out, out
        assert running.get(timeout=5) == "slept"
        assert "stopped: corekit-worker_00 (exit status 0)" in sup.main_log()
        assert "warm shutdown" in worker_log(sup)

        # sent while no worker runs: they wait on the broker and run after start
        waiting = [client.send_task("proj.add", (i, i)) for i in range(5)]
        out = sup.ctl("start", "corekit-worker:*")
        assert "corekit-worker_00: started" in out, out
        assert [r.get(timeout=30) for r in waiting] == [0, 2, 4, 6, 8]
        pids += [int(sup.ctl("pid", "corekit-worker:corekit-worker_00"))]
    finally:
        client.close()
    out = sup.ctl("shutdown")
    assert "Shut down" in out, out
    assert sup.proc.wait(60) == 0
    log = sup.main_log()
    assert "stopped: corekit-beat (exit status 0)" in log
    assert log.rindex("stopped: corekit-beat") < log.rindex("stopped: corekit-worker_00")
    for pid in pids:  # each program's process group: pool processes included
        wait_until(lambda: not group_alive(pid), 10, f"process group {pid} gone")

