"""The command line against a broker or result backend it cannot reach:
one line on stderr naming the server (password masked) and why, exit
status 1; the traceback only with ``--traceback``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from helpers import ROOT, run_cli
from servers import RedisServer, free_port

SECRET = "s3cret-pw"
PROJ = '''
from corekit import Corekit
app = Corekit("proj")

@app.task
def add(x, y):
    return x + y
'''
COMMANDS = [["status"], ["inspect", "ping"], ["control", "shutdown"], ["purge", "-f"],
            ["dlq", "list"], ["call", "proj.add", "--args", "[1, 2]"]]


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    (tmp_path / "proj.py").write_text(PROJ)
    return tmp_path


def corekit(cwd: Path, *args: str) -> Any:
    return run_cli("-A", "proj", *args, cwd=cwd,
                   env={"PYTHONPATH": os.pathsep.join([str(cwd), str(ROOT)])})


def closed_url(scheme: str) -> tuple[str, str]:
    """A URL with a password on a port where nothing listens, and how it
    should be named."""
    port = free_port()
    vhost = "/0" if scheme == "redis" else "//"
    return (f"{scheme}://someone:{SECRET}@127.0.0.1:{port}{vhost}",
            f"{scheme}://someone:**@127.0.0.1:{port}{vhost}")


def assert_one_line(out: Any, masked: str) -> None:
    assert out.returncode == 1, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert masked in lines[0] and lines[0].startswith("Error: "), lines[0]
    assert "Traceback" not in out.stderr
    assert SECRET not in out.stderr + out.stdout


@pytest.mark.parametrize("scheme", ["redis", "amqp"])
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_an_unreachable_broker_is_one_line(proj: Path, scheme: str, command: list[str]
                                           ) -> None:
    url, masked = closed_url(scheme)
    out = corekit(proj, "-b", url, "--result-backend", f"sqlite://{proj / 'r.db'}", *command)
    assert_one_line(out, masked)


def test_an_unreachable_result_backend_is_one_line(proj: Path) -> None:
    url, masked = closed_url("redis")
    out = corekit(proj, "-b", f"sqlite://{proj / 'b.db'}", "--result-backend", url,
                  "result", "6b3f2a4e-1b9c-4d2e-9a52-2f6f1d1e0c11")
    assert_one_line(out, masked)
    assert "result backend" in out.stderr


def test_a_refused_password_is_one_line(proj: Path, redis_server: RedisServer,
                                        redis_url: str) -> None:
    url = f"redis://nobody:{SECRET}@127.0.0.1:{redis_server.port}/0"
    out = corekit(proj, "-b", url, "purge", "-f")
    assert_one_line(out, f"redis://nobody:**@127.0.0.1:{redis_server.port}/0")


@pytest.mark.parametrize("where", ["before", "after"])
def test_traceback_shows_the_traceback(proj: Path, where: str) -> None:
    url, masked = closed_url("redis")
    args = ["-b", url, "purge", "-f"]
    args = ["--traceback", *args] if where == "before" else [*args, "--traceback"]
    out = corekit(proj, *args)
    assert out.returncode == 1
    assert "Traceback (most recent call last)" in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert masked in out.stderr



def test_a_hostile_servers_error_stays_one_inert_line(proj: Path) -> None:
    """A "Redis" that answers every command with an error full of terminal
    controls: still one line, escaped."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    reply = "-ERR \x1b]0;pwned\x07 \x1b[2J evil \u202e\r\n".encode() * 16

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                while conn.recv(65536):
                    conn.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    port = listener.getsockname()[1]
    try:
        out = corekit(proj, "-b", f"redis://x:{SECRET}@127.0.0.1:{port}/0", "purge", "-f")
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
    assert_one_line(out, f"redis://x:**@127.0.0.1:{port}/0")
    assert "\x1b" not in out.stderr and "\x07" not in out.stderr and "\u202e" not in out.stderr
    assert "\\x1b]0;pwned\\x07" in out.stderr


def test_an_app_module_that_raises_names_its_own_line(tmp_path: Path) -> None:
    """A bad crontab inside beat_schedule raises while the module is imported:
    the one line names the user's file, line and code (so the entry)."""
    (tmp_path / "proj.py").write_text(
        "from corekit import Corekit\n"
        "from corekit.schedules import crontab\n"
        "app = Corekit('proj')\n"
        "app.conf.beat_schedule = {\n"
        "    'nightly': {'task': 'proj.t', 'schedule': crontab(minute='61', hour=2)},\n"
        "}\n")
    out = run_cli("-A", "proj", "beat", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "Error: cannot load app module 'proj': importing it raised ValueError: crontab minute "
        "'61': out of range 0-59 (at proj.py:5: 'nightly': {'task': 'proj.t', 'schedule': "
        "crontab(minute='61', hour=2)},)")


@pytest.mark.parametrize("command", [*COMMANDS[3:], ["result", "abc"], ["beat", "list"]],
                         ids=" ".join)
def test_a_broker_file_that_is_not_a_database_is_one_line(proj: Path, command: list[str]
                                                           ) -> None:
    (proj / "corekit.sqlite3").write_bytes(b"not a database " * 400)
    out = corekit(proj, *command)
    assert out.returncode == 1, (out.stdout, out.stderr)
    line = out.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, line
    assert line.startswith("Error: ") and "file is not a database" in line, line
