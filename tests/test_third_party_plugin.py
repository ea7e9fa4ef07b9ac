"""A plugin package from outside corekit, installed the way a user would,
supplies a transport and a serializer that a worker then uses."""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, run_cli

PROJ = '''
from corekit import Corekit
app = Corekit("proj", broker="spool://spooldir", backend="sqlite://results.db",
              task_serializer="reversejson", accept_content=["reversejson"])

@app.task
def shout(word):
    return word.upper() + "!"
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(target),
                    str(ROOT / "tests" / "plugin_pkg")], check=True, capture_output=True)
    return target


def test_plugin_is_listed_with_its_distribution(site: Path) -> None:
    out = run_cli("plugins", env={"PYTHONPATH": str(site)})
    [row] = [line for line in out.stdout.splitlines() if line.startswith("spool ")]
    assert "corekit-spool" in row and "1.2.3" in row
    assert "transports: spool" in row and "serializers: reversejson" in row
    assert run_cli("worker", "--plugin", "spool", "--help",
                   env={"PYTHONPATH": str(site)}).returncode == 0


def test_worker_uses_the_plugin_transport_and_serializer(site: Path, tmp_path: Path) -> None:
    (tmp_path / "proj.py").write_text(PROJ)
    env = {"PYTHONPATH": str(site)}
    sent = run_cli("-A", "proj", "call", "proj.shout", "--args", '["hello"]', cwd=tmp_path,
                   env=env)
    task_id = sent.stdout.strip()
    # the message waits in the spool directory, its body in reversed JSON
    [spooled] = list((tmp_path / "spooldir" / "celery").glob("*.msg"))
    record = json.loads(spooled.read_text())
    assert record["content_type"] == "application/x-reversed-json"
    assert json.loads(base64.b64decode(record["body"])[::-1])[:2] == [["hello"], {}]
    worker = subprocess.Popen([sys.executable, "-m", "corekit", "-A", "proj", "worker",
                               "--plugin", "spool", "-l", "info"], cwd=tmp_path,
                              env={**os.environ, **env}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        assert worker.stdout is not None
        banner = ""
        for line in worker.stdout:
            banner += line
            if "ready." in line:
                break
        assert "transport:   spool://spooldir" in banner
        out = run_cli("-A", "proj", "result", task_id, "--wait", "20", cwd=tmp_path, env=env)
        assert out.stdout.strip() == '"HELLO!"', out.stderr
        assert list((tmp_path / "spooldir" / "celery").glob("*.msg")) == []
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
