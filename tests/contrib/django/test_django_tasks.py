"""Django's own tasks (``django.tasks`` on Django 6, the django-tasks
backport on Django 5.2) on corekit: the example project's ``TASKS`` names
``CorekitBackend``; ``@task`` functions of demoapp/django_tasks.py are
enqueued from ``manage.py shell`` and run by a worker started with
``manage.py corekit worker``, their results read back through Django's
result API.  On SQLite and on Redis; threads, prefork and asyncio pools."""
from __future__ import annotations

import json
from typing import Any

import pytest

from test_django_project import Project, any_project, project  # noqa: F401 - the fixtures

#: helpers for the scripts below, run in ``manage.py shell``
PRELUDE = """
import asyncio, json, time
from datetime import timedelta
from django.utils import timezone
from demoapp import django_tasks as dt

def finished(result, timeout=60):
    deadline = time.monotonic() + timeout
    while not result.is_finished:
        assert time.monotonic() < deadline, (result.id, result.status)
        time.sleep(0.05)
        result.refresh()
    return result

def error(call):
    try:
        call()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None

out = {}
"""

ROUND_TRIP = PRELUDE + """
r = dt.add.enqueue(2, 3)
out["enqueued"] = [r.status, r.enqueued_at is not None, r.args]
done = finished(r)
out["add"] = [done.status, done.return_value, done.worker_ids, done.errors,
              done.enqueued_at <= done.started_at <= done.finished_at,
              done.last_attempted_at == done.started_at]
again = dt.add.get_result(r.id)
out["get_result"] = [again.status, again.return_value, again.args, again.task == dt.add,
                     again.enqueued_at == r.enqueued_at]

failed = finished(dt.refuse.enqueue("nope"))
out["refuse"] = [failed.status, [e.exception_class_path for e in failed.errors],
                 failed.errors[0].exception_class is ValueError,
                 failed.errors[0].traceback.strip().splitlines()[-1],
                 error(lambda: failed.return_value)]

out["async"] = finished(dt.slow_add.enqueue(4, 5)).return_value
me = finished(dt.whoami.using(priority=50).enqueue("x"))
out["whoami"] = [me.id, me.return_value]
out["priorities"] = [finished(dt.whoami.using(priority=p).enqueue(p)).return_value["priority"]
                     for p in (-100, -81, -80, -1, 0, 19, 20, 79, 80, 100)]

later = timezone.now() + timedelta(seconds=1.5)
deferred = dt.add.using(run_after=later).enqueue(1, 1)
time.sleep(0.5)
deferred.refresh()
out["deferred_early"] = deferred.status
finished(deferred)
out["deferred"] = [deferred.started_at >= later, deferred.return_value]

async def in_async():
    result = await dt.add.aenqueue(10, 20)
    while not result.is_finished:
        await asyncio.sleep(0.05)
        await result.arefresh()
    return result.return_value, (await dt.add.aget_result(result.id)).status
out["aenqueue"] = list(asyncio.run(in_async()))

from django.db import transaction
committed = []
with transaction.atomic():  # enqueue is immediate: on_commit is the caller's choice
    transaction.on_commit(lambda: committed.append(dt.add.enqueue(5, 5)))
    out["in_transaction"] = len(committed)
out["on_commit"] = finished(committed[0]).return_value

backend = dt.add.get_backend()
out["supports"] = [backend.supports_defer, backend.supports_priority,
                   backend.supports_get_result, backend.supports_async_task]
out["unknown_id"] = error(lambda: dt.add.get_result("no-such-id"))
out["bad_queue"] = error(lambda: dt.add.using(queue_name="nowhere"))
out["bad_args"] = error(lambda: dt.add.enqueue(object(), 1))
out["bad_priority"] = error(lambda: dt.add.using(priority=101))
out["mismatch"] = error(lambda: dt.refuse.get_result(r.id))
print(json.dumps(out, default=str))
"""


def run_script(project: Project, script: str) -> dict[str, Any]:
    done = project.run("manage.py", "shell", "-c", script)
    assert done.returncode == 0, done.stderr + (project.path / "worker.log").read_text()
    return json.loads(done.stdout.strip().splitlines()[-1])


def start_worker(project: Project, *args: str) -> None:
    project.start("manage.py", "corekit", "worker", "-l", "info", *args)
    project.wait_for("ready.")


def test_django_tasks_round_trip_through_a_worker(any_project: Project) -> None:
    assert any_project.run("manage.py", "migrate", "-v0").returncode == 0
    start_worker(any_project, "-c", "2")
    out = run_script(any_project, ROUND_TRIP)
    assert out["enqueued"] == ["READY", True, [2, 3]]
    status, value, workers, errors, ordered, attempted = out["add"]
    assert (status, value, errors, ordered, attempted) == ("SUCCESSFUL", 5, [], True, True)
    assert len(workers) == 1 and workers[0].startswith("corekit@")
    assert out["get_result"] == ["SUCCESSFUL", 5, [2, 3], True, True]
    assert out["refuse"] == ["FAILED", ["builtins.ValueError"], True, "ValueError: nope",
                             "ValueError: Task failed"]
    assert out["async"] == 9
    result_id, seen = out["whoami"]
    # the TaskContext: its own result, running, first attempt; Django's default queue is
    # corekit's task_default_queue ("celery"); priority 50 is corekit's 7 (-100 is 0)
    assert seen == {"label": "x", "id": result_id, "attempt": 1, "status": "RUNNING",
                    "queue": "celery", "priority": 7}
    assert out["priorities"] == [0, 0, 1, 4, 5, 5, 6, 8, 9, 9]
    assert out["deferred_early"] == "READY"
    assert out["deferred"] == [True, 2]
    assert out["aenqueue"] == [30, "SUCCESSFUL"]
    assert (out["in_transaction"], out["on_commit"]) == (0, 10)
    assert out["supports"] == [True, True, True, True]
    assert out["unknown_id"] == "TaskResultDoesNotExist: no-such-id"
    assert out["bad_queue"].endswith("Queue 'nowhere' is not valid for backend.")
    assert out["bad_args"].startswith("TypeError: demoapp.django_tasks.add: Django task "
                                      "arguments must be JSON")
    assert out["bad_priority"].endswith("priority must be a whole number between -100 and 100.")
    assert out["mismatch"].startswith("TaskResultMismatch: Task does not match")
    # the worker logs the Django task under its module path
    assert "demoapp.django_tasks.add[" in (any_project.path / "worker.log").read_text()


OTHER_QUEUE = PRELUDE + """
mail = finished(dt.send_welcome.enqueue("ada"))
plain = dt.add.enqueue(1, 2)
time.sleep(1)
plain.refresh()
out["queues"] = [mail.return_value, plain.status]
print(json.dumps(out))
"""


def test_a_queue_other_than_default_is_the_corekit_queue_of_that_name(project: Project) -> None:
    start_worker(project, "-Q", "emails")
    # the worker takes only "emails": send_welcome runs, add (on "celery") waits
    assert run_script(project, OTHER_QUEUE)["queues"] == ["welcome, ada", "READY"]


FORGED = PRELUDE + """
from proj import corekit_app as app
header = {"django_task_backend": "default"}
forged = [app.send_task(name, [], {}, headers=header)
          for name in ("nowhere.at.all", "os.getcwd", "demoapp.django_tasks.asyncio", "import os")]
for result in forged:
    result.get(timeout=60, propagate=False)
out["forged"] = [[r.state, str(r.result)] for r in forged]
out["after"] = finished(dt.add.enqueue(20, 22)).return_value
print(json.dumps(out))
"""


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_a_message_naming_no_django_task_fails_that_task_only(project: Project,
                                                                 pool: str) -> None:
    start_worker(project, "-P", pool, "-c", "2")
    out = run_script(project, FORGED)
    states = [state for state, _ in out["forged"]]
    reasons = [reason for _, reason in out["forged"]]
    assert states == ["FAILURE"] * 4
    assert "cannot import Django task 'nowhere.at.all': ModuleNotFoundError" in reasons[0]
    assert "'os.getcwd' is not a Django task (@task) but a builtin_function_or_method" \
        in reasons[1]
    assert "'demoapp.django_tasks.asyncio' is not a Django task (@task) but a module" \
        in reasons[2]
    assert "'import os' is not a Django task's module path" in reasons[3]
    assert out["after"] == 42  # the worker carries on
    log = (project.path / "worker.log").read_text()
    assert "Traceback" not in log.split("ready.")[0]
    assert all(proc.poll() is None for proc in project.procs)


ASYNC_POOL = PRELUDE + """
results = [dt.slow_add.enqueue(i, i) for i in range(20)]
out["sums"] = [finished(r).return_value for r in results]
print(json.dumps(out))
"""


def test_async_django_tasks_on_the_asyncio_pool(project: Project) -> None:
    start_worker(project, "-P", "asyncio", "-c", "10")
    assert run_script(project, ASYNC_POOL)["sums"] == [2 * i for i in range(20)]


NO_RESULTS = """
import json
from corekit import Corekit
from corekit.contrib.django.tasks import CorekitBackend
from demoapp import django_tasks as dt
app = Corekit("bare", broker=__import__("os").environ["PROJ_BROKER_URL"])
backend = CorekitBackend("bare", {})
backend._app = app
result = backend.enqueue(dt.add, (1, 2), {})
try:
    backend.get_result(result.id)
except NotImplementedError as exc:
    error = str(exc)
message = app.connection().fetch(["celery"], 1, 5.0)
from corekit.contrib.django.task_results import status_of
statuses = [str(status_of(state)) for state in
            ("PENDING", "STARTED", "SUCCESS", "FAILURE", "REVOKED", "RETRY", "PROGRESS")]
print(json.dumps([backend.supports_get_result, result.status, error,
                  [m.headers["task"] for m in message], statuses]))
"""


def test_without_a_result_backend_enqueue_works_and_get_result_says_why(
        project: Project) -> None:
    supports, status, error, sent, statuses = run_script(project, NO_RESULTS)
    assert statuses == ["READY", "RUNNING", "SUCCESSFUL", "FAILED", "FAILED", "READY",
                        "RUNNING"]
    assert (supports, status, sent) == (False, "READY", ["demoapp.django_tasks.add"])
    assert error == ("TASKS['bare']: corekit app 'bare' has no result backend, so results "
                     "cannot be read: set COREKIT_RESULT_BACKEND (\"django-db\", or a result "
                     "backend's URL)")
