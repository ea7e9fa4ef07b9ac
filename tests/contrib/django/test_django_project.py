"""The example Django project (examples/django) run as a user runs it:
``manage.py check``, ``manage.py corekit ...`` for every corekit command,
a worker started through ``manage.py`` (and through ``corekit -A proj``)
running the tasks that ``autodiscover_tasks()`` found in INSTALLED_APPS,
with settings under the ``COREKIT_`` namespace; on SQLite and on Redis.
Each test works on its own copy of the project."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

pytest.importorskip("django", reason="Django is a test dependency (pip install -e '.[test]')")

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "django"


class Project:
    """A copy of the example project and the environment to run it in."""

    def __init__(self, path: Path, broker: str) -> None:
        self.path = path
        self.env = {**os.environ, "PROJ_BROKER_URL": broker,
                    "PROJ_DATABASE": str(path / "db.sqlite3"), "PYTHONUNBUFFERED": "1"}
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.procs: list[subprocess.Popen[str]] = []

    def run(self, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], cwd=self.path, env={**self.env, **env},
                              capture_output=True, text=True, timeout=timeout)

    def start(self, *args: str, log: str = "worker.log") -> subprocess.Popen[str]:
        out = open(self.path / log, "w")
        proc = subprocess.Popen([sys.executable, *args], cwd=self.path, env=self.env,
                                stdout=out, stderr=subprocess.STDOUT, text=True)
        out.close()
        self.procs.append(proc)
        return proc

    def wait_for(self, text: str, log: str = "worker.log", timeout: float = 60) -> str:
        import time

        deadline = time.monotonic() + timeout
        while True:
            content = (self.path / log).read_text()
            if text in content:
                return content
            assert all(p.poll() is None for p in self.procs), content
            assert time.monotonic() < deadline, f"{text!r} not in:\n{content}"
            time.sleep(0.05)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    path = tmp_path / "site"
    shutil.copytree(EXAMPLE, path, ignore=shutil.ignore_patterns("*.sqlite3*", "__pycache__"))
    proj = Project(path, f"sqlite://{tmp_path / 'broker.sqlite3'}")
    yield proj
    proj.stop()


@pytest.fixture(params=["sqlite", "redis"])
def any_project(request: pytest.FixtureRequest, project: Project) -> Project:
    if request.param == "redis":
        project.env["PROJ_BROKER_URL"] = request.getfixturevalue("redis_url")
    return project


SEND = ("from demoapp.tasks import add, installed_apps; "
        "print(add.delay(2, 3).get(timeout=60)); print(installed_apps.delay().get(timeout=60))")


def test_check_passes_with_corekit_installed(project: Project) -> None:
    done = project.run("manage.py", "check")
    assert done.returncode == 0, done.stderr
    assert "no issues" in done.stdout


def test_corekit_help_through_manage_py(project: Project) -> None:
    for args in (["corekit", "--help"], ["help", "corekit"]):
        done = project.run("manage.py", *args)
        assert done.returncode == 0, done.stderr
        assert "usage: manage.py corekit" in done.stdout
        assert "worker" in done.stdout and "beat" in done.stdout


def test_a_worker_through_manage_py_runs_the_installed_apps_tasks(any_project: Project) -> None:
    any_project.start("manage.py", "corekit", "worker", "-l", "info", "-c", "2")
    banner = any_project.wait_for("ready.")
    assert "demoapp.tasks.add" in banner and "demoapp.tasks.installed_apps" in banner
    done = any_project.run("manage.py", "shell", "-c", SEND)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-2] == "5"
    assert "corekit" in lines[-1] and "demoapp" in lines[-1]  # Django was set up in the worker
    inspected = any_project.run("manage.py", "corekit", "inspect", "registered")
    assert "demoapp.tasks.add" in inspected.stdout, inspected.stderr


def test_a_worker_started_as_corekit_dash_a_sets_django_up_itself(project: Project) -> None:
    project.start("-m", "corekit", "-A", "proj", "worker", "-l", "info")
    banner = project.wait_for("ready.")
    assert "demoapp.tasks.add" in banner
    done = project.run("manage.py", "shell", "-c", SEND)
    assert done.stdout.strip().splitlines()[-2:][0] == "5", done.stderr


def test_an_explicit_app_wins_and_a_wrong_one_is_one_error_line(project: Project) -> None:
    done = project.run("manage.py", "corekit", "-A", "nowhere.corekit:app", "inspect", "ping")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("Error: cannot load app module "
                                                           "'nowhere.corekit'")
    done = project.run("manage.py", "corekit", "inspect", "ping",
                       PROJ_COREKIT_APP="proj.nothere:app")
    assert done.returncode == 1 and "'proj.nothere'" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_namespaced_settings_reach_the_app(project: Project) -> None:
    code = ("from proj import corekit_app as app; import warnings; "
            "print(app.conf.broker_url); print(app.conf.task_track_started); "
            "print(app.conf.timezone); app.finalize()")
    done = project.run("-W", "error", "manage.py", "shell", "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-3:] == [project.env["PROJ_BROKER_URL"], "True",
                                                      "UTC"]


def test_a_bad_corekit_option_prints_usage_with_a_suggestion(project: Project) -> None:
    done = project.run("manage.py", "corekit", "wroker")
    assert done.returncode == 2
    assert "usage: manage.py corekit" in done.stderr and "worker" in done.stderr
