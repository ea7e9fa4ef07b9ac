"""extra/docker/: the Dockerfile and compose.yaml say what they should and
their corekit command lines parse with the current CLI (always); the
image's CMD and HEALTHCHECK serve here, outside a container; and where a
Docker daemon answers, compose builds and runs them for real."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from corekit import Corekit
from corekit.cli import build_parser
from extra_helpers import EXTRA, Service, corekit_command, service_env
from helpers import ROOT
from servers import free_port
from service_helpers import wait_until

DOCKER = EXTRA / "docker"


def instructions(path: Path) -> list[tuple[str, str]]:
    """A Dockerfile's ``(INSTRUCTION, arguments)``, continuation lines joined,
    comments left out."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        result.append((word.upper(), rest.strip()))
    assert not pending, "a continuation line at the end of the Dockerfile"
    return result


def final_stage() -> list[tuple[str, str]]:
    steps = instructions(DOCKER / "Dockerfile")
    starts = [i for i, (word, _) in enumerate(steps) if word == "FROM"]
    return steps[starts[-1]:]


def one(stage: list[tuple[str, str]], word: str) -> str:
    found = [rest for w, rest in stage if w == word]
    assert len(found) == 1, f"{word}: {found}"
    return found[0]


def parse_cli(argv: list[str]) -> Any:
    assert argv[0] == "corekit", argv
    try:
        return build_parser().parse_args(argv[1:])
    except SystemExit as exc:
        pytest.fail(f"{shlex.join(argv)}: not valid for the current CLI ({exc})")


def health_command() -> str:
    """The HEALTHCHECK's shell command."""
    options, _, command = one(final_stage(), "HEALTHCHECK").partition(" CMD ")
    assert options.startswith("--") and command, "HEALTHCHECK [OPTIONS] CMD command"
    return command


HEALTH_FILE = "/tmp/corekit.health"
#: the documented alternative: a ping through the broker (docs/guide/deployment.md)
STATUS_PROBE = 'corekit -A demo_tasks status -d "corekit@$HOSTNAME" -t 10'


# -- the files (always) ------------------------------------------------------------
def test_the_dockerfile_runs_a_worker_as_a_user_with_a_health_check() -> None:
    stage = final_stage()
    assert one(stage, "FROM") == "python:3.12-slim"
    user = one(stage, "USER")
    assert user not in ("root", "0") and not user.startswith("0:")
    assert one(stage, "STOPSIGNAL") == "SIGTERM"
    cmd = json.loads(one(stage, "CMD"))  # exec form: the worker is the process signalled
    args = parse_cli(cmd)
    assert args.command == "worker" and args.app and args.hostname is None
    assert getattr(args, "setting:worker_health_file") == HEALTH_FILE
    # the health file is touched within the last minute: healthy (exit status 0)
    assert health_command() == f"find {HEALTH_FILE} -mmin -1 | grep -q . || exit 1"


def test_what_the_dockerfile_copies_and_installs_exists() -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for word, rest in instructions(DOCKER / "Dockerfile"):
        if word == "COPY" and "--from" not in rest:
            *sources, _ = [part for part in rest.split() if not part.startswith("--")]
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        for name in re.findall(r"corekit\[([^\]]+)\]", rest):
            assert set(name.split(",")) <= set(extras), f"corekit[{name}]: no such extra"
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    copied = [rest.split()[-2] for w, rest in instructions(DOCKER / "Dockerfile")
              if w == "COPY" and "--from" not in rest]
    assert all(not source.startswith(tuple(ignore)) for source in copied)


def compose() -> dict[str, Any]:
    data = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_runs_redis_a_worker_and_a_beat_with_a_warm_stop() -> None:
    services = compose()["services"]
    assert set(services) == {"redis", "worker", "beat"}
    for name in ("worker", "beat"):
        svc = services[name]
        build = svc["build"]
        assert (DOCKER / build["context"]).resolve() == ROOT
        assert (ROOT / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"
        assert svc["environment"]["COREKIT_BROKER_URL"].startswith("redis://redis:")
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
        assert parse_cli(svc["command"]).command == name
    worker = parse_cli(services["worker"]["command"])
    grace = re.fullmatch(r"(\d+)s", services["worker"]["stop_grace_period"])
    assert grace and int(grace.group(1)) > worker.time_limit  # running tasks may finish
    assert getattr(worker, "setting:worker_health_file") == HEALTH_FILE  # what the image's HEALTHCHECK looks at
    assert services["beat"]["healthcheck"] == {"disable": True}


# -- the image's commands, here (always) ----------------------------------------------
@pytest.fixture
def demo_dir(tmp_path: Path) -> Path:
    """/app as the image has it: the demo's app module."""
    shutil.copy(ROOT / "examples" / "demo" / "demo_tasks.py", tmp_path)
    return tmp_path


def test_the_health_checks_pass_while_the_images_worker_runs(demo_dir: Path) -> None:
    """The image's CMD here (its health file in the test's directory): its
    HEALTHCHECK, and the broker ping the guide gives as the alternative,
    pass while it runs; after its STOPSIGNAL the HEALTHCHECK fails at once."""
    url = f"sqlite://{demo_dir / 'broker.sqlite3'}"
    host, beacon = socket.gethostname(), str(demo_dir / "corekit.health")
    env = service_env({"COREKIT_BROKER_URL": url, "COREKIT_RESULT_BACKEND": url,
                       "HOSTNAME": host})
    cmd = [beacon if arg == HEALTH_FILE else arg for arg in json.loads(one(final_stage(), "CMD"))]
    health = health_command().replace(HEALTH_FILE, beacon)
    status = STATUS_PROBE.replace("corekit ", shlex.join(corekit_command()) + " ", 1)
    assert parse_cli(shlex.split(STATUS_PROBE.replace("$HOSTNAME", host))).command == "status"

    def probe(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["/bin/sh", "-c", command], cwd=demo_dir, env=env,
                              capture_output=True, text=True, timeout=60)

    worker = Service(corekit_command() + cmd[1:], demo_dir, env)
    try:
        worker.wait_for(rf"corekit@{re.escape(host)} ready\.")
        client = Corekit("client", broker=url, backend=url)
        try:
            assert client.send_task("demo_tasks.add", (2, 3)).get(timeout=30) == 5
        finally:
            client.close()
        wait_until(lambda: probe(health).returncode == 0, 10, "the HEALTHCHECK passes")
        pinged = probe(status)
        assert pinged.returncode == 0, pinged.stdout + pinged.stderr
        assert f"corekit@{host}: OK" in pinged.stdout
        worker.proc.send_signal(signal.SIGTERM)  # the image's STOPSIGNAL
        assert worker.proc.wait(30) == 0
        assert probe(health).returncode == 1  # the file is gone with the worker
    finally:
        worker.kill()


# -- for real, where a Docker daemon answers ----------------------------------------------
def docker_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return all(subprocess.run([docker, *args], capture_output=True, timeout=30).returncode
                   == 0 for args in (["info"], ["compose", "version"]))
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture
def compose_project(tmp_path: Path) -> Iterator[dict[str, Any]]:
    if not docker_answers():
        pytest.skip("no Docker daemon answers here (`docker info` fails), or no `docker "
                    "compose`: compose.yaml and "
                    "the Dockerfile are checked by the other tests of this module only; "
                    "Docker is not a requirement of the test suite")
    port = free_port()
    name = f"corekit-test-{os.getpid()}"
    base = ["docker", "compose", "-f", str(DOCKER / "compose.yaml"), "-p", name]
    env = {**os.environ, "COREKIT_REDIS_PORT": str(port)}
    up = subprocess.run([*base, "up", "--build", "-d", "--wait"], env=env,
                        capture_output=True, text=True, timeout=900)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield {"base": base, "env": env, "url": f"redis://127.0.0.1:{port}"}
    finally:
        subprocess.run([*base, "down", "-v", "-t", "5"], env=env, capture_output=True,
                       timeout=300)


def test_compose_serves_and_stops_warmly(compose_project: dict[str, Any]) -> None:
    base, env, url = compose_project["base"], compose_project["env"], compose_project["url"]
    client = Corekit("client", broker=f"{url}/0", backend=f"{url}/1")
    try:
        assert client.send_task("demo_tasks.add", (2, 3)).get(timeout=60) == 5
    finally:
        client.close()
    container = subprocess.run([*base, "ps", "-q", "worker"], env=env, capture_output=True,
                               text=True, timeout=60).stdout.strip()
    assert container
    stop = subprocess.run([*base, "stop", "worker"], env=env, capture_output=True, text=True,
                          timeout=400)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    # exit status 0: the worker stopped warmly on SIGTERM, not killed after the grace period
    code = subprocess.run(["docker", "inspect", "-f", "{{.State.ExitCode}}", container],
                          capture_output=True, text=True, timeout=60).stdout.strip()
    assert code == "0"
    logs = subprocess.run([*base, "logs", "worker"], env=env, capture_output=True, text=True,
                          timeout=60).stdout
    assert "warm shutdown" in logs
