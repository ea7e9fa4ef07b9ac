"""A plugin package from outside corekit (tests/plugin_pkg), installed the
way a user would and registered by its entry point alone, supplies a
transport and a serializer, a bootstep and the setting it reads, a
subcommand and a ``worker`` option, and a pool that asks for early
patching; each is proven in real ``corekit`` processes."""
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
    for provided in ("bootsteps: SpoolAudit", "commands: spool-stats", "pools: spoolinline",
                     "settings: spool_audit_label"):
        assert provided in row, row
    assert run_cli("worker", "--plugin", "spool", "--help",
                   env={"PYTHONPATH": str(site)}).returncode == 0


def test_worker_uses_the_plugin_transport_and_serializer(site: Path, tmp_path: Path) -> None:
    (tmp_path / "proj.py").write_text(PROJ)
    patch_log = tmp_path / "patched.log"
    env = {"PYTHONPATH": str(site), "CORESPOOL_PATCH_LOG": str(patch_log)}
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
    assert not patch_log.exists()  # the default pool: the plugin's early patch did not run


def start(cwd: Path, env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    """A worker subprocess and what it printed until it was ready."""
    worker = subprocess.Popen([sys.executable, "-m", "corekit", "-A", "proj", "worker", *args],
                              cwd=cwd, env={**os.environ, **env}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    assert worker.stdout is not None
    out = ""
    for line in worker.stdout:
        out += line
        if "ready." in line:
            break
    return worker, out


def stop(worker: subprocess.Popen[str]) -> str:
    worker.send_signal(signal.SIGTERM)
    rest, _ = worker.communicate(timeout=30)
    return rest


def test_plugin_pool_is_patched_early_and_its_step_and_option_work(site: Path,
                                                                  tmp_path: Path) -> None:
    (tmp_path / "proj.py").write_text(PROJ)
    patch_log = tmp_path / "patched.log"
    env = {"PYTHONPATH": str(site), "CORESPOOL_PATCH_LOG": str(patch_log)}
    worker, out = start(tmp_path, env, "-P", "spoolinline", "--audit-label", "proj-audit",
                        "-l", "info")
    try:
        assert "concurrency: " in out and "(spoolinline)" in out, out
        started = out.index("proj-audit: audit step started on celery")
        assert started < out.index("ready.")  # a bootstep starts before the worker is ready
        task_id = run_cli("-A", "proj", "call", "proj.shout", "--args", '["hi"]', cwd=tmp_path,
                          env=env).stdout.strip()
        result = run_cli("-A", "proj", "result", task_id, "--wait", "20", cwd=tmp_path, env=env)
        assert result.stdout.strip() == '"HI!"', result.stderr
    finally:
        rest = stop(worker)
    assert "proj-audit: audit step stopped" in rest, rest
    assert worker.returncode == 0, rest
    [imported] = patch_log.read_text().splitlines()  # patched once, by the worker only
    modules = imported.split()
    assert "proj" not in modules  # before the app module
    assert "corekit.app" not in modules and "corekit.worker" not in modules


def test_plugin_pool_named_only_in_the_settings_refuses_to_start(site: Path,
                                                                tmp_path: Path) -> None:
    (tmp_path / "proj.py").write_text(PROJ + "\napp.conf.worker_pool = 'spoolinline'\n")
    out = run_cli("-A", "proj", "worker", cwd=tmp_path, env={"PYTHONPATH": str(site)})
    assert out.returncode == 1
    assert "the spoolinline pool needs the process patched first" in out.stderr, out.stderr


def test_plugin_subcommand_runs_and_shows_in_help(site: Path, tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(site)}
    top = run_cli("--help", env=env)
    assert "spool-stats" in top.stdout and "count the messages waiting" in top.stdout
    worker_help = run_cli("worker", "--help", env=env).stdout
    assert "--audit-label TEXT" in worker_help and "options from plugin 'spool'" in worker_help
    (tmp_path / "proj.py").write_text(PROJ)
    for word in ("a", "b"):
        run_cli("-A", "proj", "call", "proj.shout", "--args", f'["{word}"]', cwd=tmp_path,
                env=env)
    stats = run_cli("-A", "proj", "spool-stats", cwd=tmp_path, env=env)
    assert stats.returncode == 0 and stats.stdout.splitlines() == ["celery: 2"], stats.stderr
    wrong = run_cli("-A", "proj", "-b", "memory://", "spool-stats", cwd=tmp_path, env=env)
    assert wrong.returncode == 1 and "spool-stats needs a spool:// broker" in wrong.stderr


def test_plugin_setting_is_known_and_typed(site: Path) -> None:
    script = """
import warnings
from corekit import Corekit
from corekit.exceptions import ImproperlyConfigured
warnings.simplefilter("error")  # an unknown setting would warn: make that fail
app = Corekit("x", broker="memory://s", backend="memory://s")
print(app.conf.spool_audit_label)
print(app.plugins.plugins["spool"].provides["settings"])
app.conf.spool_audit_label = 5
try:
    app.finalize()
except ImproperlyConfigured as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(site)}, timeout=60)
    lines = out.stdout.splitlines()
    assert lines[:2] == ["spool-audit", "['spool_audit_label']"], out.stderr
    assert "spool_audit_label" in lines[2] and "must be str" in lines[2], out.stdout


def test_the_patch_runs_only_when_the_command_line_names_its_pool(site: Path,
                                                                 tmp_path: Path) -> None:
    patch_log = tmp_path / "patched.log"
    env = {"PYTHONPATH": str(site), "CORESPOOL_PATCH_LOG": str(patch_log)}
    for args in (["worker", "-P", "threads", "--help"], ["--help"], ["worker", "--help"],
                 ["spool-stats", "--help"]):
        assert run_cli(*args, env=env).returncode == 0
        assert not patch_log.exists(), args
    assert run_cli("worker", "--pool=spoolinline", "--help", env=env).returncode == 0
    assert len(patch_log.read_text().splitlines()) == 1
