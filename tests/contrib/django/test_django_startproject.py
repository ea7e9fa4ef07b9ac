"""The Django guide's path from ``django-admin startproject`` to a running
worker and beat, done as a user would on a new project (not the example):
the app module, the settings, an app with tasks, ``migrate``, then
``manage.py corekit worker`` and ``manage.py corekit beat`` as two
processes, a periodic task made with the ORM, its runs' results in the
database."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from test_django_project import Project

pytest.importorskip("django", reason="Django is a test dependency (pip install -e '.[test]')")

pytestmark = pytest.mark.slow

APP_MODULE = '''import os

from corekit import Corekit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopsite.settings")

app = Corekit("shopsite")
app.config_from_object("django.conf:settings", namespace="COREKIT")
app.autodiscover_tasks()
'''

SETTINGS = '''
INSTALLED_APPS += ["corekit.contrib.django", "shop"]
DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
COREKIT_BROKER_URL = "sqlite://" + str(BASE_DIR / "broker.sqlite3")
COREKIT_RESULT_BACKEND = "django-db"
COREKIT_BEAT_STORE_URL = "django-db"
COREKIT_RESULT_EXTENDED = True
'''

TASKS = '''from corekit import shared_task


@shared_task
def restock(item, count):
    return f"{count} x {item}"
'''

SCHEDULE_AND_WAIT = '''
import time
from corekit.contrib.django.models import IntervalSchedule, PeriodicTask, TaskResult
every, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
PeriodicTask.objects.create(name="restock-apples", task="shop.tasks.restock", interval=every,
                            args='["apples", 12]')
deadline = time.monotonic() + 60
while TaskResult.objects.filter(task_name="shop.tasks.restock", status="SUCCESS").count() < 2:
    assert time.monotonic() < deadline, "no two runs in 60 s"
    time.sleep(0.1)
row = TaskResult.objects.filter(task_name="shop.tasks.restock").first()
print(row.result)
'''


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Project]:
    root = tmp_path / "site"
    root.mkdir()
    made = subprocess.run([sys.executable, "-m", "django", "startproject", "shopsite", "."],
                          cwd=root, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    proj = Project(root, "")
    proj.env.pop("PROJ_BROKER_URL")
    proj.env.pop("PROJ_DATABASE")
    yield proj
    proj.stop()


def test_from_startproject_to_a_worker_and_a_beat(site: Project) -> None:
    app = site.run("manage.py", "startapp", "shop")
    assert app.returncode == 0, app.stderr
    (site.path / "shopsite" / "corekit.py").write_text(APP_MODULE)
    init = site.path / "shopsite" / "__init__.py"
    init.write_text(init.read_text() + "from .corekit import app as corekit_app\n")
    settings = site.path / "shopsite" / "settings.py"
    settings.write_text(settings.read_text() + SETTINGS)
    (site.path / "shop" / "tasks.py").write_text(TASKS)

    migrated = site.run("manage.py", "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    site.start("manage.py", "corekit", "worker", "-l", "info", "-c", "2")
    site.start("manage.py", "corekit", "beat", "-l", "info", log="beat.log")
    worker_log = site.wait_for("ready.")
    assert "shop.tasks.restock" in worker_log  # found in INSTALLED_APPS
    site.wait_for("started", log="beat.log")
    done = site.run("manage.py", "shell", "-c", SCHEDULE_AND_WAIT, timeout=120)
    assert done.returncode == 0, done.stderr + (site.path / "beat.log").read_text()
    assert done.stdout.strip().splitlines()[-1] == '"12 x apples"'
