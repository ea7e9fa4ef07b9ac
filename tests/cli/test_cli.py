"""The command line, as a user types it."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import corekit
from helpers import run_cli

PROJ = '''
import threading, time
from corekit import Corekit
app = Corekit("proj", broker="sqlite://broker.db", backend="sqlite://broker.db",
              broker_heartbeat=0.2, broker_lease_timeout=2)

@app.task
def add(x, y):
    return x + y

@app.task
def sleepy(path, seconds):
    open(path, "w").write("started")
    time.sleep(seconds)
    return "slept"

@app.task(acks_late=True)
def hold(directory):
    import os
    open(os.path.join(directory, "running-%d" % threading.get_ident()), "w").close()
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(directory, "release")):
        assert time.monotonic() < deadline
        time.sleep(0.02)

@app.task
def shout(text):
    import sys
    print(text)
    print("to stderr too", file=sys.stderr)
'''


def test_version_and_help(cli: Callable[..., Any]) -> None:
    out = cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"corekit {corekit.__version__}"
    for args in (["--help"], ["worker", "--help"], ["call", "--help"], ["result", "--help"],
                 ["purge", "--help"], ["plugins", "--help"], ["dlq", "--help"],
                 ["dlq", "list", "--help"]):
        out = cli(*args)
        assert out.returncode == 0 and "usage: corekit" in out.stdout, args


@pytest.mark.parametrize("args", [["worker", "--bogus"], ["worker", "-c", "zero"],
                                  ["worker", "-l", "loud"],
                                  ["worker", "-c", "0"], ["worker", "-O", "unfair"],
                                  ["frobnicate"], [],
                                  ["call"], ["call", "t", "--args", "{not json"],
                                  ["call", "t", "--args", '{"a": 1}']])
def test_bad_flags_print_usage_and_exit_2(cli: Callable[..., Any], args: list[str]) -> None:
    out = cli(*args)
    assert out.returncode == 2 and "usage: corekit" in out.stderr


@pytest.mark.parametrize("args, says", [
    (["worker", "--concurency", "4"], "corekit worker: error: unrecognized arguments: "
                                      "--concurency 4 (did you mean --concurrency?)"),
    (["worker", "--conc", "3"], "unrecognized arguments: --conc 3 (did you mean "
                                "--concurrency?)"),  # no abbreviations
    (["call", "t", "--countdow=3"], "corekit call: error: unrecognized arguments: "
                                    "--countdow=3 (did you mean --countdown?)"),
    (["beat", "list", "--jsn"], "corekit beat list: error: unrecognized arguments: --jsn "
                                "(did you mean --json?)"),
    (["-A", "proj"], "required: COMMAND (one of: worker, call, result,"),
])
def test_a_bad_flag_is_reported_by_its_command_with_a_suggestion(
        cli: Callable[..., Any], args: list[str], says: str) -> None:
    out = cli(*args)
    command = " ".join(a for a in args if not a.startswith("-") and a in ("worker", "call",
                                                                          "beat", "list"))
    assert out.returncode == 2 and says in out.stderr, out.stderr
    assert f"usage: corekit {command}".rstrip() in out.stderr  # its own usage


def test_a_bare_corekit_lists_the_commands(cli: Callable[..., Any]) -> None:
    out = cli()
    assert out.returncode == 2
    for command in ("worker", "call", "inspect", "beat", "events", "monitor"):
        assert f"    {command} " in out.stderr, command


def test_the_pool_option_names_every_installed_pool(cli: Callable[..., Any]) -> None:
    from corekit.pluginmanager import default_manager

    text = " ".join(cli("worker", "--help").stdout.split())
    pools = sorted(default_manager().registry("pools"))
    assert {"prefork", "eventlet", "asyncio", "threads", "solo"} <= set(pools)
    assert f"one of the installed: {', '.join(pools)}" in text


def test_call_refuses_a_task_the_loaded_app_does_not_register(proj: Path) -> None:
    out = run_cli("-A", "proj", "call", "proj.ad", cwd=proj)
    assert out.returncode == 1 and out.stdout == ""
    assert ("Error: unknown task 'proj.ad': app 'proj' registers no task of that name "
            "(did you mean proj.add or proj.hold?); --unregistered sends it anyway") in out.stderr
    sent = run_cli("-A", "proj", "call", "proj.ad", "--unregistered", cwd=proj)
    assert sent.returncode == 0 and len(sent.stdout.strip()) == 36


def test_missing_app_module_says_which_and_why(cli: Callable[..., Any], tmp_path: Path) -> None:
    out = cli("-A", "no_such_proj", "worker", cwd=tmp_path)
    assert out.returncode == 1
    assert "cannot load app module 'no_such_proj'" in out.stderr
    assert "no module named 'no_such_proj'" in out.stderr
    (tmp_path / "broken.py").write_text("import not_installed_dependency\n")
    out = cli("-A", "broken", "worker", cwd=tmp_path)
    assert "'broken'" in out.stderr and "not_installed_dependency" in out.stderr


def test_plugins_lists_what_each_provides(cli: Callable[..., Any]) -> None:
    out = cli("plugins")
    assert out.returncode == 0
    rows = {line.split()[0]: line for line in out.stdout.splitlines()[1:]}
    assert {"json", "msgpack", "pickle", "zlib", "bzip2", "zstd", "memory", "sqlite",
            "solo", "threads"} <= set(rows)
    assert "transports: sqlite" in rows["sqlite"] and "corekit" in rows["sqlite"]
    assert corekit.__version__ in rows["json"]
    data = json.loads(cli("plugins", "--json").stdout)
    assert {"name", "distribution", "version", "provides"} <= set(data[0])


def test_worker_plugin_must_be_installed(cli: Callable[..., Any], tmp_path: Path) -> None:
    out = cli("worker", "--plugin", "nosuchplugin", cwd=tmp_path)
    assert out.returncode == 1
    assert "plugin 'nosuchplugin' is not installed" in out.stderr


def wait_for_file(path: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    (tmp_path / "proj.py").write_text(PROJ)
    return tmp_path


def start_worker(cwd: Path, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "corekit", "-A", "proj", "worker",
                             "-l", "info", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if "ready." in line:
            break
    else:
        raise AssertionError("worker never became ready:\n" + "".join(lines))
    proc.banner = "".join(lines)  # type: ignore[attr-defined]
    return proc


@pytest.fixture
def worker(proj: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        procs.append(start_worker(proj, *args))
        return procs[-1]

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_call_result_purge_and_banner(proj: Path, worker: Any) -> None:
    assert run_cli("-A", "proj", "purge", "-f", cwd=proj).returncode == 0
    sent = run_cli("-A", "proj", "call", "proj.add", "--args", "[2, 2]", cwd=proj)
    assert sent.returncode == 0, sent.stderr
    task_id = sent.stdout.strip()
    assert len(task_id) == 36
    assert run_cli("-A", "proj", "result", task_id, cwd=proj).stdout.strip() == "PENDING"
    w = worker("-c", "2", "-Q", "celery,other", "-n", "alpha@%h", "--pool", "threads")
    for needed in ("alpha@", "sqlite://broker.db", "concurrency: 2 (threads)", ".> celery",
                   ".> other", "proj.add", "proj.sleepy"):
        assert needed in w.banner, needed
    out = run_cli("-A", "proj", "result", task_id, "--wait", "10", cwd=proj)
    assert out.stdout.strip() == "4", out.stderr
    w.send_signal(signal.SIGTERM)
    assert w.wait(20) == 0
    run_cli("-A", "proj", "call", "proj.add", "--args", "[1, 1]", cwd=proj)
    run_cli("-A", "proj", "call", "proj.add", "--args", "[1, 1]", "-Q", "other", cwd=proj)
    out = run_cli("-A", "proj", "purge", "-f", "-Q", "celery,other", cwd=proj)
    assert out.stdout.strip() == "Purged 2 messages from 2 known task queues."


def test_sigterm_is_a_warm_shutdown(proj: Path, worker: Any) -> None:
    marker = proj / "started"
    sent = run_cli("-A", "proj", "call", "proj.sleepy", "--args",
                   json.dumps([str(marker), 1.0]), cwd=proj)
    task_id = sent.stdout.strip()
    w = worker("-c", "1")
    wait_for_file(marker)
    w.send_signal(signal.SIGTERM)
    output = w.communicate(timeout=20)[0]
    assert w.returncode == 0
    assert "warm shutdown" in output
    assert run_cli("-A", "proj", "result", task_id, cwd=proj).stdout.strip() == '"slept"'


def test_dlq_list_and_replay(proj: Path, worker: Any) -> None:
    run_cli("-A", "proj", "call", "proj.unknown", "--args", "[1]", "--unregistered", cwd=proj)
    w = worker()
    run_cli("-A", "proj", "result", run_cli("-A", "proj", "call", "proj.add", "--args",
                                            "[0, 0]", cwd=proj).stdout.strip(),
            "--wait", "10", cwd=proj)
    w.send_signal(signal.SIGINT)
    w.wait(20)
    listing = run_cli("-A", "proj", "dlq", "list", "--json", cwd=proj)
    [letter] = json.loads(listing.stdout)
    assert letter["task"] == "proj.unknown" and "unknown task" in letter["reason"]
    assert "unknown task 'proj.unknown'" in run_cli("-A", "proj", "dlq", "list",
                                                    cwd=proj).stdout
    assert run_cli("-A", "proj", "dlq", "replay", cwd=proj).returncode == 2
    out = run_cli("-A", "proj", "dlq", "replay", "--all", cwd=proj)
    assert out.stdout.strip() == "Replayed 1 message."
    assert "empty" in run_cli("-A", "proj", "dlq", "list", cwd=proj).stdout


def test_prefetch_multiplier_bounds_what_a_worker_holds(proj: Path, worker: Any) -> None:
    """``-c 2 --prefetch-multiplier 3``: two running and four reserved, six
    unacked (acks_late) in all; the other 44 stay on the broker."""
    client = corekit.Corekit("client", broker=f"sqlite://{proj / 'broker.db'}")
    runs = proj / "runs"
    runs.mkdir()
    try:
        for _ in range(50):
            client.send_task("proj.hold", [str(runs)])
        w = worker("-c", "2", "--prefetch-multiplier", "3", "-O", "fair", "-P", "threads")
        deadline = time.monotonic() + 20
        while len(list(runs.glob("running-*"))) < 2:
            assert time.monotonic() < deadline, "two tasks never started"
            time.sleep(0.02)
        db = sqlite3.connect(proj / "broker.db")
        owned = db.execute("SELECT COUNT(*) FROM messages WHERE owner IS NOT NULL")
        assert owned.fetchone()[0] == 6
        assert client.connection().queue_size("celery") == 50 - 6
        db.close()
        (runs / "release").touch()
        w.send_signal(signal.SIGTERM)
        assert w.wait(20) == 0
    finally:
        client.close()


def test_passwords_never_printed(tmp_path: Path) -> None:
    from corekit.transport import mask_url

    assert mask_url("redis://user:secret@host:6379/0") == "redis://user:**@host:6379/0"
    assert mask_url("sqlite://x.db") == "sqlite://x.db"
    assert mask_url("redis://:secret@host:6379/0") == "redis://:**@host:6379/0"
    assert mask_url("amqp://guest:guest@localhost//") == "amqp://guest:**@localhost//"


def test_exclude_queues_and_broker_override(proj: Path, worker: Any) -> None:
    w = worker("-Q", "a,b,c", "-X", "b")
    assert ".> a" in w.banner and ".> c" in w.banner and ".> b\n" not in w.banner
    w.send_signal(signal.SIGTERM)
    w.wait(20)
    out = run_cli("-A", "proj", "-b", "sqlite://other.db", "call", "proj.add", "--args",
                  "[1, 2]", cwd=proj)
    assert out.returncode == 0
    assert (proj / "other.db").exists()


def test_second_signal_is_a_cold_shutdown(proj: Path, worker: Any) -> None:
    marker = proj / "started"
    run_cli("-A", "proj", "call", "proj.sleepy", "--args", json.dumps([str(marker), 60]),
            cwd=proj)
    w = worker("-c", "1")
    wait_for_file(marker)
    w.send_signal(signal.SIGTERM)
    for line in w.stdout:  # signals that arrive together count as one: wait for the first
        if "warm shutdown" in line:
            break
    w.send_signal(signal.SIGTERM)
    assert w.wait(10) == 1  # did not wait for the 60 s task


def test_call_follows_routes_and_routing_keys(proj: Path) -> None:
    (proj / "proj.py").write_text(PROJ + '\napp.conf.task_routes = {"proj.add": "hipri"}\n')
    run_cli("-A", "proj", "call", "proj.add", "--args", "[1, 2]", cwd=proj)
    run_cli("-A", "proj", "call", "proj.sleepy", "--routing-key", "other", cwd=proj)
    out = run_cli("-A", "proj", "purge", "-f", "-Q", "hipri,other", cwd=proj)
    assert out.stdout.strip() == "Purged 2 messages from 2 known task queues."


def test_what_a_task_prints_goes_to_the_worker_log(proj: Path, worker: Any) -> None:
    w = worker("-c", "1")
    sent = run_cli("-A", "proj", "call", "proj.shout", "--args", '["hello from a task"]',
                   cwd=proj)
    out = run_cli("-A", "proj", "result", sent.stdout.strip(), "--wait", "10", cwd=proj)
    assert out.stdout.strip() == "null", out.stderr
    w.send_signal(signal.SIGTERM)
    log = w.communicate(timeout=20)[0]
    line = next(line for line in log.splitlines() if "hello from a task" in line)
    assert "WARNING" in line and "proj.shout" in line  # a log record naming the task
    assert "to stderr too" in log
