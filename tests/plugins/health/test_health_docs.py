"""The probes of docs/guide/health.md, as written there (Kubernetes' httpGet
and exec probes, Docker's HEALTHCHECK commands), run against a worker
started with the page's own command line: each passes while the worker
consumes and fails once it stopped."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import ROOT
from servers import free_port
from service_helpers import WorkerProcess, wait_until

PAGE = ROOT / "docs" / "guide" / "health.md"
BLOCK = re.compile(r'^```(\w+) title="([^"]+)"\n(.*?)^```', re.MULTILINE | re.DOTALL)
PROJ = '''
from corekit import Corekit
app = Corekit("proj")

@app.task
def add(x, y):
    return x + y
'''


def blocks() -> dict[str, str]:
    return {title: body for _, title, body in BLOCK.findall(PAGE.read_text())}


def probes(manifest: Any) -> list[dict[str, Any]]:
    """Every probe of a parsed manifest excerpt, liveness first."""
    container = manifest["containers"][0] if "containers" in manifest else manifest
    return [container[k] for k in ("livenessProbe", "readinessProbe") if k in container]


@pytest.fixture
def setting(tmp_path: Path) -> dict[str, Any]:
    """What the page's fixed names become here: its port, its file, and a
    bin folder where ``corekit`` and ``python`` are this interpreter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, command in (("corekit", f"{sys.executable} -m corekit"),
                          ("python", sys.executable)):
        (bin_dir / name).write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        (bin_dir / name).chmod(0o755)
    (tmp_path / "proj.py").write_text(PROJ)
    broker = f"sqlite://{tmp_path / 'broker.db'}"
    return {"port": str(free_port()), "file": str(tmp_path / "corekit.health"),
            "env": {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                    "PYTHONPATH": str(tmp_path), "HOSTNAME": socket.gethostname(),
                    "COREKIT_BROKER_URL": broker, "COREKIT_RESULT_BACKEND": broker}}


def local(text: str, setting: dict[str, Any]) -> str:
    return text.replace("8000", setting["port"]).replace("/tmp/corekit.health", setting["file"])


def passes(probe: dict[str, Any], setting: dict[str, Any], cwd: Path) -> bool:
    if "httpGet" in probe:
        get = probe["httpGet"]
        assert get["port"] == 8000
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{setting['port']}{get['path']}",
                                        timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError):
            return False
    command = [local(part, setting) for part in probe["exec"]["command"]]
    return run(command, setting, cwd) == 0


def run(command: list[str], setting: dict[str, Any], cwd: Path) -> int:
    return subprocess.run(command, cwd=cwd, env={**os.environ, **setting["env"]},
                          capture_output=True, timeout=30).returncode


def docker_checks(setting: dict[str, Any]) -> list[list[str]]:
    found = [body for title, body in blocks().items() if title.startswith("Dockerfile")]
    commands = []
    for body in found:
        line = body.replace("\\\n", " ")
        commands.append(["sh", "-c", local(line.split(" CMD ", 1)[1].strip(), setting)])
    assert len(commands) == 2
    return commands


def test_the_pages_probes_pass_on_a_consuming_worker_and_fail_once_it_stopped(
        tmp_path: Path, setting: dict[str, Any]) -> None:
    pages = blocks()
    manifest = yaml.safe_load(pages["deployment.yaml"])
    exec_probes = yaml.safe_load(pages["deployment.yaml, exec probes"])
    args = [local(part, setting) for part in manifest["containers"][0]["command"]]
    assert args[:2] == ["corekit", "-A"]
    all_probes = probes(manifest) + probes(exec_probes)
    assert len(all_probes) == 4
    checks = docker_checks(setting)

    worker = WorkerProcess(tmp_path, *args[1:], "-P", "threads", "-c", "1", "--no-banner",
                           env=setting["env"])
    try:
        worker.wait_for(r"ready\.")
        wait_until(lambda: Path(setting["file"]).exists(), what="the health file")
        for probe in all_probes:
            assert passes(probe, setting, tmp_path), (probe, worker.output)
        for command in checks:
            assert run(command, setting, tmp_path) == 0, command
    finally:
        assert worker.stop() == 0, worker.output
    for probe in all_probes:
        assert not passes(probe, setting, tmp_path), probe
    for command in checks:
        assert run(command, setting, tmp_path) != 0, command
