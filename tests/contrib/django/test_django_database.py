"""A Django project's database in corekit: each task gets a connection that
is not stale (closed before and after each task, in every pool, in the
thread its ORM calls run in: an async task's too), a forked
child never uses its parent's connection, and ``delay_on_commit`` sends
only once the transaction commits."""
from __future__ import annotations

import json

import pytest
from test_django_project import Project, project  # noqa: F401 - the fixture

pytest.importorskip("django", reason="Django is a test dependency (pip install -e '.[test]')")

pytestmark = pytest.mark.slow

COUNT = ("import json; from demoapp.tasks import *; "
         "add_user.delay('ada').get(timeout=60); "
         "print(json.dumps([count_users.delay().get(timeout=60) for _ in range(3)]));"
         "[count_users.delay().get(timeout=60) for _ in range(5)];"
         "print(open_database_files.delay().get(timeout=60));"
         "print(inherited_connections.delay().get(timeout=60))")


@pytest.mark.parametrize("pool", ["threads", "prefork", "solo", "eventlet"])
def test_each_task_gets_a_fresh_connection(project: Project, pool: str) -> None:  # noqa: F811
    migrated = project.run("manage.py", "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    project.env["PROJ_TOUCH_DB"] = "1"  # the worker's main process opens one before any fork
    # eventlet must patch the interpreter before Django is imported: not through manage.py
    command = ["-m", "corekit", "-A", "proj"] if pool == "eventlet" else ["manage.py", "corekit"]
    worker = project.start(*command, "worker", "-P", pool, "-c", "1", "-l", "info")
    project.wait_for("ready.")
    done = project.run("manage.py", "shell", "-c", COUNT)
    assert done.returncode == 0, done.stderr
    *_, line, held, inherited = done.stdout.strip().splitlines()
    results = json.loads(line)
    assert [r["users"] for r in results] == [1, 1, 1]
    # closed after each task: the next one on the same thread opens its own
    assert [r["fresh"] for r in results] == [True, True, True]
    # nothing left open by the tasks before (eventlet runs each in a greenlet
    # of its own: a connection not closed after its task would stay open)
    assert int(held) <= 1, held
    if pool == "prefork":  # the child set the parent's connection aside, unclosed
        assert {r["pid"] for r in results} != {worker.pid}
        assert inherited == "1"
    else:
        assert inherited == "0"


ASYNC_COUNT = ("import json; from demoapp.tasks import *; "
               "add_user.delay('ada').get(timeout=60); "
               "print(json.dumps([acount_users.delay().get(timeout=60) for _ in range(3)]));"
               "print(json.dumps([count_users.delay().get(timeout=60) for _ in range(3)]));"
               "print(open_database_files.delay().get(timeout=60))")


def test_async_tasks_get_a_fresh_connection_in_the_asyncio_pool(
        project: Project) -> None:  # noqa: F811
    """Django's async ORM runs in asgiref's one shared thread (a worker has
    no outer async_to_sync): old connections are closed there before and
    after each ``async def`` task; plain tasks, in the pool's threads."""
    migrated = project.run("manage.py", "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    project.start("manage.py", "corekit", "worker", "-P", "asyncio", "-c", "1", "-l", "info")
    project.wait_for("ready.")
    done = project.run("manage.py", "shell", "-c", ASYNC_COUNT)
    assert done.returncode == 0, done.stderr
    *_, async_line, sync_line, held = done.stdout.strip().splitlines()
    async_results, sync_results = json.loads(async_line), json.loads(sync_line)
    assert [r["users"] for r in async_results + sync_results] == [1] * 6
    # every async task's ORM calls in one thread, not one of the pool's
    threads = {r["thread"] for r in async_results}
    assert len(threads) == 1 and not threads.pop().startswith("corekit-asyncio"), threads
    assert all(r["connected_there"] for r in async_results)
    assert [r["fresh"] for r in async_results] == [True, True, True]
    assert [r["fresh"] for r in sync_results] == [True, True, True]
    assert held == "0"  # none left open, in any thread


MAX_AGE = 3
AGED = ("import json, time; from demoapp.tasks import *; "
        "from django.contrib.auth.models import User; User.objects.create(username='ada'); "
        "fresh = [acount_users.delay().get(timeout=60)['fresh'] for _ in range(2)]; "
        "held = open_database_files.delay().get(timeout=60); "
        f"time.sleep({MAX_AGE} + 0.5); "
        "fresh.append(acount_users.delay().get(timeout=60)['fresh']); "
        "print(json.dumps(fresh)); print(held)")


def test_async_tasks_reuse_a_connection_until_conn_max_age(
        project: Project) -> None:  # noqa: F811
    """Django's rule with CONN_MAX_AGE > 0: a connection is kept for the
    next task while younger than that, and closed before a task once older."""
    migrated = project.run("manage.py", "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    project.env["PROJ_CONN_MAX_AGE"] = str(MAX_AGE)
    project.start("manage.py", "corekit", "worker", "-P", "asyncio", "-c", "1", "-l", "info")
    project.wait_for("ready.")
    done = project.run("manage.py", "shell", "-c", AGED)
    assert done.returncode == 0, done.stderr
    *_, fresh, held = done.stdout.strip().splitlines()
    assert json.loads(fresh) == [True, False, True]
    assert held == "1"  # the async tasks' connection, kept between them


ON_COMMIT = '''
from django.db import transaction
from demoapp.tasks import add
from proj import corekit_app as app

broker = app.connection()
size = lambda: broker.queue_size("celery")
try:
    with transaction.atomic():
        add.delay_on_commit(1, 1)
        print("in the transaction", size())
        raise RuntimeError("roll back")
except RuntimeError:
    pass
print("after the rollback", size())
with transaction.atomic():
    assert add.apply_async_on_commit((2, 2), countdown=0) is None
    print("before the commit", size())
print("after the commit", size())
add.delay_on_commit(3, 3)
print("outside a transaction", size())
'''


def test_delay_on_commit_sends_after_the_commit_and_never_on_rollback(
        project: Project) -> None:  # noqa: F811
    done = project.run("manage.py", "shell", "-c", ON_COMMIT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-5:] == [
        "in the transaction 0", "after the rollback 0", "before the commit 0",
        "after the commit 1", "outside a transaction 2"]


def test_eventlet_through_manage_py_is_one_clear_error(project: Project) -> None:  # noqa: F811
    done = project.run("manage.py", "corekit", "worker", "-P", "eventlet")
    assert done.returncode == 1
    assert "the eventlet pool needs the process monkey patched before anything else" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_user_signed_up_is_welcomed_by_a_worker(project: Project) -> None:  # noqa: F811
    assert project.run("manage.py", "migrate", "--noinput").returncode == 0
    project.start("manage.py", "corekit", "worker", "-c", "2", "-l", "debug")
    project.wait_for("ready.")
    done = project.run("manage.py", "shell", "-c",
                       "from demoapp.accounts import sign_up; print(sign_up('grace').username)")
    assert done.returncode == 0, done.stderr
    log = project.wait_for("welcome, grace")  # the task found the committed row
    assert "DoesNotExist" not in log
