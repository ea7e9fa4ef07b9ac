"""The headline command as a new user types it: the app and settings from a
config file or the environment, ``--plugin`` picking the broker, ``-b``
moving the results, a loud warning for a worker without tasks."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from helpers import run_cli
from servers import require_binary

TASKS = '''
import time
from corekit import Corekit

app = Corekit("proj")

@app.task
def add(x, y):
    return x + y

@app.task
def nap(i):
    time.sleep(1)
    return i
'''


def env_without_app() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith("COREKIT_") or k in ("COREKIT_EXPECT_EXTENSIONS",
                                                     "COREKIT_NO_EXTENSIONS")}


def start(cwd: Path, *args: str, env: dict[str, str] | None = None,
          until: str = "ready.") -> tuple[subprocess.Popen[str], str]:
    """``python -m corekit ARGS`` in *cwd*, read until a line holds *until*."""
    proc = subprocess.Popen([sys.executable, "-m", "corekit", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env if env is not None else env_without_app())
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if until in line:
            return proc, "".join(lines)
    proc.wait(10)
    raise AssertionError(f"no line with {until!r}:\n" + "".join(lines))


def line(banner: str, label: str) -> str:
    return next(text for text in banner.splitlines() if label in text).rstrip()


def stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    return out


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory whose pyproject.toml names the app and the broker."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "tasks.py").write_text(TASKS)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "proj"\nversion = "0"\n\n[tool.corekit]\napp = "tasks"\n'
        f'broker_url = "sqlite://{tmp_path / "broker.db"}"\nbroker_heartbeat = 0.2\n')
    return root


def test_the_app_and_the_broker_come_from_pyproject(project: Path, tmp_path: Path) -> None:
    worker, banner = start(project, "worker", "-P", "threads", "-c", "2")
    try:
        assert "tasks.add" in banner and f"sqlite://{tmp_path}/broker.db" in banner
        assert "(from pyproject.toml [tool.corekit])" in banner
        assert "(follows the broker)" in banner
        sent = run_cli("call", "tasks.add", "-a", "[2, 3]", cwd=project, env=env_without_app())
        assert sent.returncode == 0, sent.stderr
        got = run_cli("result", sent.stdout.strip(), "--wait", "20", cwd=project,
                      env=env_without_app())
        assert got.stdout.strip() == "5", got
    finally:
        stop(worker)
    assert not (project / "corekit.sqlite3").exists()  # results followed the broker


def test_flags_beat_the_environment_which_beats_the_file(project: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "other_tasks.py").write_text(TASKS.replace('"proj"', '"other"'))
    env = {**env_without_app(), "COREKIT_APP": "other_tasks", "PYTHONPATH": str(other),
           "COREKIT_WORKER_CONCURRENCY": "3"}
    shown = run_cli("call", "tasks.add", cwd=project, env=env)  # COREKIT_APP wins over app=
    assert shown.returncode == 1 and "app 'other' registers no task" in shown.stderr
    shown = run_cli("call", "other_tasks.nap", "-a", "[1]", cwd=project, env=env)
    assert shown.returncode == 0, shown.stderr
    worker, banner = start(project, "-A", "tasks", "worker", "-P", "threads",
                           "-b", f"sqlite://{tmp_path}/flag.db", env=env)
    stop(worker)
    assert "tasks.add" in banner and "other_tasks" not in banner  # -A wins over COREKIT_APP
    assert line(banner, "transport:").endswith("flag.db) (from --broker)")  # -b over the file
    assert "concurrency: 3 (threads)" in banner  # the environment over the default
    assert line(banner, "results:").endswith("flag.db) (follows the broker)")


def test_dash_b_alone_moves_the_results_unless_a_backend_is_configured(
        tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(TASKS)
    url = f"sqlite://{tmp_path}/moved.db"
    worker, banner = start(tmp_path, "-A", "tasks", "worker", "-P", "threads", "-b", url)
    try:
        assert line(banner, "results:").endswith("moved.db) (follows the broker)")
        sent = run_cli("-A", "tasks", "-b", url, "call", "tasks.add", "-a", "[1, 1]",
                       cwd=tmp_path, env=env_without_app())
        got = run_cli("-A", "tasks", "-b", url, "result", sent.stdout.strip(), "--wait", "20",
                      cwd=tmp_path, env=env_without_app())
        assert got.stdout.strip() == "2", got
    finally:
        stop(worker)
    assert not (tmp_path / "corekit.sqlite3").exists()
    configured = f"sqlite://{tmp_path}/results.db"
    worker, banner = start(tmp_path, "-A", "tasks", "worker", "-P", "threads", "-b", url,
                           env={**env_without_app(), "COREKIT_RESULT_BACKEND": configured})
    stop(worker)
    assert line(banner, "results:").endswith("results.db) (from COREKIT_RESULT_BACKEND)")


@pytest.mark.parametrize("plugin, broker, results", [
    ("redis", "redis://localhost:6379/0", "redis://localhost:6379/0"),
    ("amqp", "amqp://guest:**@localhost:5672//",
     "rpc:// (replies through amqp://guest:**@localhost:5672//)"),
])
def test_plugin_names_the_broker_and_the_results_on_their_default_urls(
        tmp_path: Path, plugin: str, broker: str, results: str) -> None:
    (tmp_path / "tasks.py").write_text(TASKS)
    worker, banner = start(tmp_path, "-A", "tasks", "worker", "--plugin", plugin, "-P", "threads",
                           until="[tasks]")
    stop(worker)  # it waits for a broker that may not be there: the banner is what counts
    assert f"transport:   {broker} (from --plugin {plugin})" in banner, banner
    assert f"results:     {results} (follows the broker)" in banner, banner
    both = run_cli("-A", "tasks", "--plugin", "redis", "--plugin", "amqp", "call", "tasks.add",
                   cwd=tmp_path, env=env_without_app())
    assert both.returncode == 1 and "name the broker with -b" in both.stderr, both.stderr
    missing = run_cli("worker", "--plugin", "nosuch", cwd=tmp_path, env=env_without_app())
    assert missing.returncode == 1 and "plugin 'nosuch' is not installed" in missing.stderr


def test_a_worker_without_tasks_says_so_and_ready_shows_at_the_default_level(
        tmp_path: Path) -> None:
    worker, banner = start(tmp_path, "worker", "-P", "threads", "-b",
                           f"sqlite://{tmp_path}/b.db")  # no -l: the default level
    stop(worker)
    assert "(none: this app registers no tasks)" in banner
    assert "WARNING/MainProcess] corekit@" in banner and "registers no tasks" in banner
    assert "app = \"MODULE\" in corekit.toml" in banner
    assert banner.rstrip().endswith("ready.")


def test_bad_config_file_and_environment_are_one_clear_error(project: Path) -> None:
    (project / "corekit.toml").write_text('app = "tasks"\nworker_concurrency = "lots"\n')
    out = run_cli("call", "tasks.add", cwd=project, env=env_without_app())
    assert out.returncode == 1
    assert "corekit.toml: setting 'worker_concurrency' must be int" in out.stderr, out.stderr
    (project / "corekit.toml").write_text('app = "tasks"\n[broken\n')
    out = run_cli("call", "tasks.add", cwd=project, env=env_without_app())
    assert out.returncode == 1 and "corekit.toml is not valid TOML" in out.stderr, out.stderr
    (project / "corekit.toml").unlink()
    out = run_cli("call", "tasks.add", cwd=project,
                  env={**env_without_app(), "COREKIT_TASK_ACKS_LATE": "perhaps"})
    assert out.returncode == 1
    assert "COREKIT_TASK_ACKS_LATE='perhaps': setting 'task_acks_late' takes bool" in out.stderr


def test_an_app_named_outside_the_command_line_that_does_not_load_says_who_named_it(
        tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.corekit]\napp = "nosuch"\n')
    out = run_cli("call", "x", cwd=tmp_path, env=env_without_app())
    assert out.returncode == 1
    assert "no module named 'nosuch'" in out.stderr
    assert "(the app named by pyproject.toml [tool.corekit])" in out.stderr, out.stderr
    out = run_cli("call", "x", cwd=tmp_path, env={**env_without_app(), "COREKIT_APP": "gone"})
    assert "no module named 'gone'" in out.stderr
    assert "(the app named by COREKIT_APP)" in out.stderr, out.stderr


# -- the headline command, as written ----------------------------------------------------


def _answers_redis(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def local_redis(tmp_path: Path) -> Iterator[None]:
    """A Redis on the default local port, as ``--plugin redis`` expects: ours if
    the port is free, the machine's if one already answers there."""
    if _answers_redis(6379):
        yield
        return
    binary = require_binary("redis-server", "redis-server")
    proc = subprocess.Popen([binary, "--port", "6379", "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not _answers_redis(6379):
            if proc.poll() is not None:
                pytest.fail("redis-server could not start on port 6379 (taken by something "
                            "that is not Redis?)")
            assert time.monotonic() < deadline, "redis-server did not answer on 6379"
            time.sleep(0.02)
        yield
    finally:
        proc.terminate()
        proc.wait(10)


CLIENT = '''
import sys, time
from corekit import Corekit, group
app = Corekit("client", broker="redis://localhost:6379/0")
queue = sys.argv[1]
started = time.monotonic()
results = [app.send_task("tasks.nap", args=(i,), queue=queue) for i in range(1000)]
got = [r.get(timeout=60) for r in results]
assert got == list(range(1000)), got[:10]
print("1000 one-second tasks in %.2f s" % (time.monotonic() - started))
'''


def test_the_headline_command_serves_1000_one_second_tasks(local_redis: None,
                                                           tmp_path: Path) -> None:
    pytest.importorskip("eventlet")
    queue = f"headline-{uuid.uuid4().hex[:8]}"  # apart from anything else on that Redis
    project = tmp_path / "project"
    project.mkdir()
    (project / "tasks.py").write_text(TASKS)
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "proj"\nversion = "0"\n\n[tool.corekit]\napp = "tasks"\n'
        f'task_default_queue = "{queue}"\n')
    worker, banner = start(project, "worker", "--plugin", "redis", "--pool", "eventlet",
                           "-c", "1000")
    try:
        assert "concurrency: 1000 (eventlet)" in banner and "tasks.nap" in banner
        client = tmp_path / "elsewhere"
        client.mkdir()
        (client / "client.py").write_text(CLIENT)
        out = subprocess.run([sys.executable, "client.py", queue], cwd=client,
                             capture_output=True, text=True, timeout=120, env=env_without_app())
        assert out.returncode == 0, out.stderr
        print(out.stdout.strip())
    finally:
        stop(worker)
