"""The ``django-db`` result backend: the result-backend contract suite on
it (in a pytest of its own: Django is set up there for good), and the
example project with its results in the database: a worker's results, the
admin's changelists filtered and searched, and expired rows deleted by the
``celery.backend_cleanup`` task."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_django_project import Project, project  # noqa: F401 - the fixture

pytest.importorskip("django", reason="Django is a test dependency (pip install -e '.[test]')")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]


def test_the_result_backend_contract_passes_on_django_db(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env["COREKIT_CONTRACT_DJANGO"] = str(tmp_path / "contract.sqlite3")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:django",
         "tests/contract/test_backend_contract.py", "-k", "django-db"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "skipped" not in done.stdout and " passed" in done.stdout


ROUND_TRIP = '''
import json
from corekit import group
from demoapp.tasks import add
from corekit.contrib.django.models import TaskResult, GroupResult
result = add.delay(2, 3)
print(result.get(timeout=60))
joined = group(add.s(i, i) for i in range(4))()
print(joined.get(timeout=60))
joined.save()
row = TaskResult.objects.get(task_id=result.id)
print(json.dumps([row.status, row.task_name, row.result, bool(row.worker),
                  GroupResult.objects.filter(group_id=joined.id).exists()]))
'''

ADMIN = '''
from django.contrib.auth.models import User
from django.test import Client
from corekit.contrib.django.models import TaskResult
user = User.objects.create_superuser("admin", "admin@example.com", "pw")
client = Client()
client.force_login(user)
done = TaskResult.objects.filter(status="SUCCESS").first()
base = "/admin/corekit/taskresult/"
for query, wanted in [("", done.task_id), ("?status__exact=SUCCESS", done.task_id),
                      ("?status__exact=FAILURE", None), ("?task_name=demoapp.tasks.add", done.task_id),
                      ("?q=" + done.task_id, done.task_id), ("?q=no-such-id", None)]:
    page = client.get(base + query)
    print(page.status_code, (wanted in page.content.decode()) if wanted else
          ("0 task results" in page.content.decode()))
detail = client.get(base + str(done.pk) + "/change/")
print(detail.status_code, "demoapp.tasks.add" in detail.content.decode())
print(client.get("/admin/corekit/groupresult/").status_code)
print(client.get(base + "add/").status_code)  # the workers write them: no add page
'''

CLEANUP = '''
from datetime import timedelta
from django.utils import timezone
from corekit.contrib.django.models import TaskResult
from proj import corekit_app as app
TaskResult.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
kept = app.backend.store_result("fresh", 1, "SUCCESS")
print(app.tasks["celery.backend_cleanup"].apply().get() >= 1)
print(list(TaskResult.objects.values_list("task_id", flat=True)))
'''


def test_a_worker_stores_results_in_the_database_and_the_admin_shows_them(
        project: Project) -> None:  # noqa: F811
    project.env["PROJ_RESULT_BACKEND"] = "django-db"
    assert project.run("manage.py", "migrate", "--noinput").returncode == 0
    project.start("manage.py", "corekit", "worker", "-c", "4", "-l", "info")
    project.wait_for("ready.")
    done = project.run("manage.py", "shell", "-c", ROUND_TRIP)
    assert done.returncode == 0, done.stderr
    *_, value, joined, row = done.stdout.strip().splitlines()
    assert value == "5" and joined == "[0, 2, 4, 6]"
    assert json.loads(row) == ["SUCCESS", "demoapp.tasks.add", "5", True, True]

    admin = project.run("manage.py", "shell", "-c", ADMIN)
    assert admin.returncode == 0, admin.stderr
    assert admin.stdout.strip().splitlines()[-9:] == ["200 True"] * 7 + ["200", "403"]

    cleaned = project.run("manage.py", "shell", "-c", CLEANUP)
    assert cleaned.returncode == 0, cleaned.stderr
    assert cleaned.stdout.strip().splitlines()[-2:] == ["True", "['fresh']"]
