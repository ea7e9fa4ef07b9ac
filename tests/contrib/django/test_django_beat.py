"""The ``django-db`` schedule store: the schedule-store contract and three
beats with a ``kill -9`` on it (each in a pytest of its own, Django set up
there for good), and the example project with its periodic tasks in the
database: an entry added in the admin fires on a running beat (a worker
started with ``-B``), the "disable" and "run now" actions, a deletion, the
``COREKIT_BEAT_SCHEDULE`` entry shown read-only, the changelists filtered,
and bad input refused with the reason, on SQLite and on Redis brokers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_django_project import Project, any_project, project  # noqa: F401 - fixtures

pytest.importorskip("django", reason="Django is a test dependency (pip install -e '.[test]')")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]


def run_pytest_with_django(env_name: str, database: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env[env_name] = str(database)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:django", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "skipped" not in done.stdout and " passed" in done.stdout
    return done.stdout


def test_the_schedule_store_contract_passes_on_django_db(tmp_path: Path) -> None:
    run_pytest_with_django("COREKIT_CONTRACT_DJANGO", tmp_path / "contract.sqlite3",
                           "tests/contract/test_schedule_store_contract.py", "-k", "django-db")


def test_three_beats_and_a_kill_9_fire_each_run_once_on_django_db(tmp_path: Path) -> None:
    run_pytest_with_django("COREKIT_BEAT_DJANGO", tmp_path / "beat.sqlite3",
                           "tests/plugins/beat/test_beat_replicas.py", "-k", "django-db")


ADMIN_SESSION = '''
import json, re, time
from django.contrib.auth.models import User
from django.test import Client
from corekit.contrib.django.models import BeatRemoved, IntervalSchedule, PeriodicTask
from proj import corekit_app as app

def wait_for(predicate, what):
    deadline = time.monotonic() + 60
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)

def runs():
    return PeriodicTask.objects.get(name="added-in-admin").total_run_count

user = User.objects.create_superuser("admin", "admin@example.com", "pw")
client = Client()
client.force_login(user)
# the beat_schedule entry, written by the beat at its start: read-only here
wait_for(lambda: PeriodicTask.objects.filter(source="config").exists(), "the config entry")
config = PeriodicTask.objects.get(name="cleanup-expired-results")
page = client.get(f"/admin/corekit/periodictask/{config.pk}/change/").content.decode()
print(json.dumps(['name="task"' in page, 'name="enabled"' in page]))

page = client.post("/admin/corekit/intervalschedule/add/", {"every": 1, "period": "seconds"})
interval = IntervalSchedule.objects.get(every=1, period="seconds")
page = client.post("/admin/corekit/periodictask/add/", {
    "name": "added-in-admin", "task": "demoapp.tasks.add", "interval": interval.pk,
    "args": "[2, 3]", "kwargs": "{}", "enabled": "on"})
print(page.status_code)
wait_for(lambda: runs() >= 2, "two runs of the entry added in the admin")
task = PeriodicTask.objects.get(name="added-in-admin")
print(app.AsyncResult(task.last_task_id).get(timeout=30))

listing = "/admin/corekit/periodictask/"
page = client.post(listing, {"action": "disable_tasks", "_selected_action": [task.pk]},
                   follow=True)
print("1 periodic task(s) disabled." in page.content.decode())
stopped_at = runs()
time.sleep(3)  # three periods of the entry: a disabled entry must not fire again
print(runs() - stopped_at <= 1)  # (one run may have been on its way)

page = client.post(listing, {"action": "run_tasks_now", "_selected_action": [task.pk]},
                   follow=True)
sent = re.search(r"added-in-admin \\(([0-9a-f-]+)\\)", page.content.decode()).group(1)
print(app.AsyncResult(sent).get(timeout=30))

page = client.post(f"{listing}{task.pk}/delete/", {"post": "yes"})
print(page.status_code, PeriodicTask.objects.filter(name="added-in-admin").exists(),
      BeatRemoved.objects.filter(name="added-in-admin").exists())
'''


def test_an_entry_added_in_the_admin_fires_on_a_running_beat(
        any_project: Project) -> None:  # noqa: F811
    migrated = any_project.run("manage.py", "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    any_project.start("manage.py", "corekit", "worker", "-B", "-c", "2", "-l", "info")
    any_project.wait_for("ready.")
    done = any_project.run("manage.py", "shell", "-c", ADMIN_SESSION, timeout=240)
    assert done.returncode == 0, done.stderr + (any_project.path / "worker.log").read_text()
    lines = done.stdout.strip().splitlines()[-7:]
    assert json.loads(lines[0]) == [False, True]  # only "enabled" can be changed there
    assert lines[1:] == ["302", "5", "True", "True", "5", "302 False True"]
    log = (any_project.path / "worker.log").read_text()
    assert "Traceback" not in log, log


ADMIN_PAGES = '''
import html, json, re
from django.contrib.auth.models import User
from django.test import Client
from corekit.contrib.django.models import CrontabSchedule, IntervalSchedule, PeriodicTask

user = User.objects.create_superuser("admin", "admin@example.com", "pw")
client = Client()
client.force_login(user)
every = IntervalSchedule.objects.create(every=30, period="minutes")
cron = CrontabSchedule.objects.create(minute="0", hour="4")
PeriodicTask.objects.create(name="report", task="demoapp.tasks.add", crontab=cron,
                            args="[1, 2]", enabled=False)
tick = PeriodicTask.objects.create(name="tick", task="demoapp.tasks.add", interval=every)
out = {}
for path in ["periodictask/", "periodictask/?enabled__exact=1", "periodictask/?enabled__exact=0",
             "periodictask/?q=report", "periodictask/add/", "intervalschedule/",
             "crontabschedule/", "solarschedule/", "clockedschedule/", "solarschedule/add/"]:
    page = client.get("/admin/corekit/" + path)
    body = page.content.decode()
    out[path] = [page.status_code, ">tick<" in body, ">report<" in body]

def refused(path, data):
    page = client.post("/admin/corekit/" + path, data)
    errors = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', page.content.decode(), re.S)
    return [page.status_code, html.unescape(re.sub("<[^>]+>", " ", " ".join(errors)))]

task = {"name": "bad", "task": "demoapp.tasks.add", "args": "[]", "kwargs": "{}",
        "enabled": "on"}
out["two schedules"] = refused("periodictask/add/", {**task, "interval": every.pk,
                                                      "crontab": cron.pk})
out["no schedule"] = refused("periodictask/add/", task)
out["args not json"] = refused("periodictask/add/", {**task, "interval": every.pk,
                                                      "args": "[1, 2"})
out["kwargs a list"] = refused("periodictask/add/", {**task, "interval": every.pk,
                                                      "kwargs": "[1]"})
out["unknown zone"] = refused("periodictask/add/", {**task, "crontab": cron.pk,
                                                     "timezone": "Mars/Olympus"})
out["option typo"] = refused("periodictask/add/", {**task, "interval": every.pk,
                                                    "options": '{"expire": 10}'})
out["bad hour"] = refused("crontabschedule/add/", {"minute": "0", "hour": "99",
                                                   "day_of_week": "*", "day_of_month": "*",
                                                   "month_of_year": "*"})
out["stored"] = sorted(PeriodicTask.objects.values_list("name", flat=True))
# a schedule changed in the admin changes the entries that use it (what beats read)
version = tick.version
page = client.post(f"/admin/corekit/intervalschedule/{every.pk}/change/",
                   {"every": 10, "period": "seconds"})
tick.refresh_from_db()
out["edited"] = [page.status_code, tick.version > version,
                 json.loads(tick.definition)["schedule"]["every"]]
print(json.dumps(out))
'''


def test_the_admin_pages_of_periodic_tasks_filter_and_refuse_bad_input(
        project: Project) -> None:  # noqa: F811
    assert project.run("manage.py", "migrate", "--noinput").returncode == 0
    done = project.run("manage.py", "shell", "-c", ADMIN_PAGES)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out.pop("periodictask/") == [200, True, True]
    assert out.pop("periodictask/?enabled__exact=1") == [200, True, False]
    assert out.pop("periodictask/?enabled__exact=0") == [200, False, True]
    assert out.pop("periodictask/?q=report") == [200, False, True]
    for path in ["periodictask/add/", "intervalschedule/", "crontabschedule/",
                 "solarschedule/", "clockedschedule/", "solarschedule/add/"]:
        assert out.pop(path)[0] == 200, path
    assert out.pop("stored") == ["report", "tick"]  # nothing bad was saved
    assert out.pop("edited") == [302, True, 10.0]
    reasons = {"two schedules": "set exactly one of interval, crontab, solar, clocked (set: "
               "interval, crontab)", "no schedule": "(set: none)",
               "args not json": "args: not JSON", "kwargs a list": "kwargs: must be a dict",
               "unknown zone": "'Mars/Olympus': unknown time zone",
               "option typo": "unknown option(s): expire", "bad hour": "hour '99': out of range"}
    for case, (status, errors) in out.items():  # the form again, with the reason
        assert status == 200 and reasons[case] in errors, (case, errors)


def test_periodic_tasks_made_with_the_orm_are_what_corekit_beat_lists(
        project: Project) -> None:  # noqa: F811
    assert project.run("manage.py", "migrate", "--noinput").returncode == 0
    made = project.run("manage.py", "shell", "-c",
                       "from demoapp.periodic import schedule_reports; schedule_reports(); "
                       "schedule_reports()")  # twice: update_or_create, the same rows
    assert made.returncode == 0, made.stderr
    listed = project.run("manage.py", "corekit", "beat", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in map(json.loads, listed.stdout.splitlines())}
    assert sorted(rows) == ["add-every-10s", "nightly-count"]
    assert rows["add-every-10s"]["task"] == "demoapp.tasks.add"
    assert rows["add-every-10s"]["schedule"] == "<freq: 0:00:10>"
    assert "30 2 * * *" in rows["nightly-count"]["schedule"]
    assert "Europe/London" in rows["nightly-count"]["schedule"]
    disabled = project.run("manage.py", "corekit", "beat", "disable", "nightly-count")
    assert disabled.returncode == 0, disabled.stderr
    shown = project.run("manage.py", "shell", "-c",
                        "from corekit.contrib.django.models import PeriodicTask; "
                        "t = PeriodicTask.objects.get(name='nightly-count'); "
                        "print(t.enabled, t.queue, t.expire_seconds)")
    assert shown.stdout.strip().splitlines()[-1] == "False reports 3600"
