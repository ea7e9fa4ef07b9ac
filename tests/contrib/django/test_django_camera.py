"""``manage.py corekit cam``: the workers' events saved as snapshots in the
example project's database, shown and filtered in the admin, and old task
snapshots pruned (django-celery's ``celerycam``)."""
from __future__ import annotations

import pytest
from test_django_project import Project, project  # noqa: F401 - the fixture

pytest.importorskip("django", reason="Django is a test dependency (pip install -e '.[test]')")

pytestmark = pytest.mark.slow

WATCH = '''
import time
from demoapp.tasks import add, refuse
from corekit.contrib.django.models import TaskState, WorkerState
ok, bad = add.delay(1, 2), refuse.delay("nope")
ok.get(timeout=60); bad.get(timeout=60, propagate=False)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    seen = dict(TaskState.objects.filter(task_id__in=[ok.id, bad.id]).values_list("task_id", "state"))
    if seen == {ok.id: "SUCCESS", bad.id: "FAILURE"}:
        break
    time.sleep(0.2)
task = TaskState.objects.get(task_id=ok.id)
print(seen == {ok.id: "SUCCESS", bad.id: "FAILURE"}, task.name, task.result, task.worker.hostname)
print(list(WorkerState.objects.values_list("status", flat=True)))
'''

ADMIN = '''
from django.contrib.auth.models import User
from django.test import Client
from corekit.contrib.django.models import TaskState
done = TaskState.objects.get(state="SUCCESS").task_id
failed = TaskState.objects.get(state="FAILURE").task_id
user = User.objects.create_superuser("admin", "admin@example.com", "pw")
client = Client()
client.force_login(user)
page = client.get("/admin/corekit/taskstate/?state__exact=FAILURE")
text = page.content.decode()
print(page.status_code, failed in text, done not in text)
print(client.get("/admin/corekit/workerstate/").status_code)
'''

PRUNE = '''
from datetime import timedelta
from django.utils import timezone
from corekit.contrib.django.camera import Camera
from corekit.contrib.django.models import TaskState
from corekit.events.state import State
now = timezone.now()
TaskState.objects.filter(state="SUCCESS").update(tstamp=now - timedelta(days=2))
TaskState.objects.filter(state="FAILURE").update(tstamp=now - timedelta(days=2))
Camera(State()).on_cleanup()
print(sorted(TaskState.objects.values_list("state", flat=True)))
'''


def test_the_camera_saves_snapshots_for_the_admin(project: Project) -> None:  # noqa: F811
    assert project.run("manage.py", "migrate", "--noinput").returncode == 0
    project.start("manage.py", "corekit", "worker", "-E", "-c", "2", "-l", "info")
    project.wait_for("ready.")
    project.start("manage.py", "corekit", "cam", "--frequency", "0.3", log="cam.log")
    project.wait_for("taking snapshots", log="cam.log")
    watched = project.run("manage.py", "shell", "-c", WATCH)
    assert watched.returncode == 0, watched.stderr
    *_, task, workers = watched.stdout.strip().splitlines()
    assert task.split() == ["True", "demoapp.tasks.add", "3", task.split()[-1]]
    assert task.split()[-1].startswith("corekit@")
    assert workers == "['ONLINE']"

    admin = project.run("manage.py", "shell", "-c", ADMIN)
    assert admin.returncode == 0, admin.stderr
    assert admin.stdout.strip().splitlines()[-2:] == ["200 True True", "200"]

    pruned = project.run("manage.py", "shell", "-c", PRUNE)
    assert pruned.returncode == 0, pruned.stderr
    # a success two days old is gone; a failure is kept three days
    assert pruned.stdout.strip().splitlines()[-1] == "['FAILURE']"
