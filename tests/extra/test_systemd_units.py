"""extra/systemd/: each unit parses, its commands are valid for the current
CLI, ``systemd-analyze verify`` accepts it (where systemd-analyze is
installed), and its ExecStart, run as systemd would run it with the
variables of corekit.conf, serves: a task sent gets its result, the beat's
periodic task runs, the monitor answers, the worker's ExecReload restarts
it in place; the unit's KillSignal stops each within TimeoutStopSec, the
worker after finishing its running task."""
from __future__ import annotations

import http.client
import re
import shlex
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from corekit import Corekit
from corekit.cli import build_parser
from extra_helpers import (EXTRA, INSTALLED, PROJECT_DIR, Service, corekit_command,
                           group_alive, service_env)
from servers import free_port
from service_helpers import wait_until

SYSTEMD = EXTRA / "systemd"
RUN = ("corekit-worker.service", "corekit-beat.service", "corekit-monitor.service")
#: the units above, and a template for several workers on one host (corekit-worker@w1)
UNITS = (*RUN, "corekit-worker@.service")
INSTANCE = "w1"
ENV_FILE = "/etc/conf.d/corekit"


# -- reading units and environment files as systemd does -----------------------------
def read_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections of a unit file, each key with its values in order (a key may
    repeat); ``#``/``;`` comments, a trailing backslash continues a line."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: {line!r} before any [section]"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: {line!r} is not KEY=VALUE"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def read_environment_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines; quotes around a value removed, nothing expanded."""
    env = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        name, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name.strip()), line
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[name.strip()] = value
    return env


def expand_specifiers(text: str) -> str:
    """The unit-file specifiers the units here may use (``%%``, ``%H``, and
    ``%i``: the instance of a template, INSTANCE here)."""
    def one(match: re.Match[str]) -> str:
        spec = match.group(1)
        if spec == "%":
            return "%"
        if spec == "H":
            return socket.gethostname()
        if spec == "i":
            return INSTANCE
        raise AssertionError(f"specifier %{spec} in {text!r}: not expected in these units")
    return re.sub(r"%(.)", one, text)


def command_line(value: str, env: dict[str, str]) -> list[str]:
    """An Exec line as systemd runs it: specifiers, then words (quotes as in
    a shell), then ``$NAME`` alone as a word is the value split at
    whitespace (none if unset or empty) and ``${NAME}`` is the value as is."""
    words = shlex.split(expand_specifiers(value))
    words[0] = words[0].lstrip("-@:+!")
    argv: list[str] = []
    for word in words:
        alone = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if alone:
            argv.extend(env.get(alone.group(1), "").split())
        else:
            argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                               lambda m: env.get(m.group(1), ""), word))
    return argv


def service(unit: str) -> dict[str, str]:
    """The unit's [Service] keys (the last value of each)."""
    return {key: values[-1] for key, values in read_unit(SYSTEMD / unit)["Service"].items()}


def seconds(text: str) -> float:
    """A systemd time span as the units here write it (``330``, ``30s``, ``5min``)."""
    match = re.fullmatch(r"(\d+)\s*(s|min)?", text)
    assert match, f"{text!r}: not a time span these tests read"
    return int(match.group(1)) * (60 if match.group(2) == "min" else 1)


def example_env() -> dict[str, str]:
    return read_environment_file(SYSTEMD / "corekit.conf")


def parse_cli(argv: list[str]) -> Any:
    """*argv* (after the executable) parsed by the current ``corekit`` parser;
    a usage error fails the test with argparse's message."""
    try:
        return build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"corekit {shlex.join(argv)}: not valid for the current CLI ({exc})")


# -- the files themselves ----------------------------------------------------------
@pytest.mark.parametrize("unit", UNITS)
def test_unit_runs_corekit_in_the_foreground_with_valid_commands(unit: str) -> None:
    sections = read_unit(SYSTEMD / unit)
    assert set(sections) == {"Unit", "Service", "Install"}
    svc = service(unit)
    assert svc["Type"] == "simple"  # no fork, no pid file: systemd watches the process
    assert sections["Service"]["EnvironmentFile"][0] == ENV_FILE
    assert svc["WorkingDirectory"] == PROJECT_DIR
    assert svc["User"] == svc["Group"] == "corekit"
    assert svc["KillSignal"] == "SIGTERM" and svc["Restart"] == "always"
    assert sections["Install"]["WantedBy"] == ["multi-user.target"]
    argv = command_line(svc["ExecStart"], example_env())
    assert argv[0] == INSTALLED
    args = parse_cli(argv[1:])
    assert args.command == re.match(r"corekit-(\w+)", unit).group(1)  # type: ignore[union-attr]
    assert "--detach" not in argv and "multi" not in argv


@pytest.mark.parametrize("unit", ["corekit-worker.service", "corekit-worker@.service"])
def test_the_worker_units_wait_for_running_tasks_and_reload_with_sighup(unit: str) -> None:
    svc = service(unit)
    # only the worker gets SIGTERM: its pool processes must not die under a task
    assert svc["KillMode"] == "mixed"
    args = parse_cli(command_line(svc["ExecStart"], example_env())[1:])
    assert args.time_limit, "corekit.conf's example sets --time-limit"
    assert seconds(svc["TimeoutStopSec"]) > args.time_limit
    assert command_line(svc["ExecReload"], {"MAINPID": "1234"}) == ["/bin/kill", "-HUP",
                                                                    "1234"]
    if unit == "corekit-worker@.service":  # w1@<host>, its own options file after the common one
        assert args.hostname == f"{INSTANCE}@{socket.gethostname()}"
        assert read_unit(SYSTEMD / unit)["Service"]["EnvironmentFile"] == [
            ENV_FILE, f"-{ENV_FILE}-%i"]


def test_every_variable_the_units_use_is_in_the_example_file() -> None:
    env = example_env()
    used = set()
    for unit in UNITS:
        for key in ("ExecStart", "ExecReload"):
            if key in service(unit):
                used |= set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", service(unit)[key]))
    assert used - {"MAINPID"} <= set(env), used - set(env)
    assert {"COREKIT_BROKER_URL", "COREKIT_RESULT_BACKEND"} <= set(env)


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here: the units are checked by the "
                    "other tests of this module only")
    # verify wants the executables to exist: the units as installed on this machine
    executable = corekit_command()[0]
    assert executable.endswith("corekit"), "no corekit console script beside this Python"
    (tmp_path / "corekit.conf").write_text((SYSTEMD / "corekit.conf").read_text())
    for unit in UNITS:
        text = (SYSTEMD / unit).read_text()
        assert INSTALLED in text and ENV_FILE in text
        (tmp_path / unit).write_text(text.replace(INSTALLED, executable)
                                     .replace(ENV_FILE, str(tmp_path / "corekit.conf")))
    done = subprocess.run([analyze, "verify", "--man=no", *[str(tmp_path / u) for u in UNITS]],
                          capture_output=True, text=True, timeout=60)
    # a value systemd cannot parse is only a warning ("ignoring"): any output fails
    assert done.returncode == 0 and not done.stdout and not done.stderr, (
        done.stdout + done.stderr)


# -- the units at work --------------------------------------------------------------
def start_unit(unit: str, env: dict[str, str], cwd: Path) -> Service:
    argv = command_line(service(unit)["ExecStart"], env)
    assert argv[0] == INSTALLED
    return Service(corekit_command() + argv[1:], cwd, service_env(env))


def stop_unit(unit: str, svc: Service) -> tuple[int, float]:
    """Stop as systemd does: KillSignal to the main process (KillMode=mixed)
    or to every process (control-group, the default); after TimeoutStopSec,
    SIGKILL to all.  Returns the exit status and the unit's timeout."""
    keys = service(unit)
    signum = signal.Signals[keys["KillSignal"]]
    timeout = seconds(keys["TimeoutStopSec"])
    if keys.get("KillMode", "control-group") == "mixed":
        svc.proc.send_signal(signum)
    else:
        svc.signal_group(signum)
    try:
        code = svc.proc.wait(min(timeout, 60))  # past 60 s the test has failed anyway
    except subprocess.TimeoutExpired:
        svc.kill()
        raise AssertionError(f"{unit} did not stop within its TimeoutStopSec:\n{svc.output}")
    wait_until(lambda: not group_alive(svc.pid), 10, f"{unit}'s processes gone")
    return code, timeout


@pytest.fixture
def units(proj_dir: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The three units' ExecStart with corekit.conf's variables, the broker a
    SQLite file of this test's own, the monitor on a free port."""
    url = f"sqlite://{tmp_path / 'broker.sqlite3'}"
    port = free_port()
    env = {**example_env(), "COREKIT_BROKER_URL": url, "COREKIT_RESULT_BACKEND": url,
           "COREKIT_MONITOR_OPTS": f"--port {port}"}
    (proj_dir / "ticks").unlink(missing_ok=True)
    running: dict[str, Any] = {"env": env, "port": port, "url": url}
    try:
        for unit in RUN:
            running[unit] = start_unit(unit, env, proj_dir)
        yield running
    finally:
        for unit in RUN:
            if unit in running:
                running[unit].kill()


def monitor_get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def answers(port: int, path: str) -> bool:
    try:
        return monitor_get(port, path)[0] == 200
    except OSError:
        return False


def test_the_units_serve_and_stop_warmly(units: dict[str, Any], proj_dir: Path) -> None:
    worker, beat = units["corekit-worker.service"], units["corekit-beat.service"]
    monitor = units["corekit-monitor.service"]
    node = units["env"]["COREKIT_WORKER_NAME"].replace("%h", socket.gethostname())
    worker.wait_for(rf"{re.escape(node)} ready\.")
    assert "(prefork)" in worker.output  # COREKIT_WORKER_OPTS reached the worker
    client = Corekit("client", broker=units["url"], backend=units["url"])
    try:
        assert client.send_task("proj.add", (2, 3)).get(timeout=30) == 5
        # systemctl reload: ExecReload run as is; the worker restarts in place
        reload = command_line(service("corekit-worker.service")["ExecReload"],
                              {"MAINPID": str(worker.pid)})
        assert subprocess.run(reload, timeout=10).returncode == 0
        worker.wait_for(rf"{re.escape(node)} ready\.")
        assert worker.proc.poll() is None  # the same pid: systemd's MAINPID holds
        assert client.send_task("proj.add", (3, 4)).get(timeout=30) == 7
        # the beat fires proj.touch every 0.5 s; the worker runs it
        wait_until(lambda: (proj_dir / "ticks").exists(), 30, "a periodic run")
        wait_until(lambda: answers(units["port"], "/metrics"), 30, "the monitor")

        # a stop while a task runs: the task finishes, its result is stored
        (proj_dir / "systemd-sleepy").unlink(missing_ok=True)
        running = client.send_task("proj.sleepy", ("systemd-sleepy", 1.5))
        wait_until(lambda: (proj_dir / "systemd-sleepy").exists(), 30, "sleepy started")
        for unit, svc in (("corekit-beat.service", beat),
                          ("corekit-monitor.service", monitor),
                          ("corekit-worker.service", worker)):
            code, _ = stop_unit(unit, svc)
            # systemd counts exit status 0 and death by SIGTERM as a clean stop
            assert code in (0, -signal.SIGTERM), f"{unit} exited {code}:\n{svc.output}"
        assert "warm shutdown" in worker.output
        assert running.get(timeout=5) == "slept"
    finally:
        client.close()
