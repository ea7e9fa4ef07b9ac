"""Tasks of a reusable app: @shared_task, so the app does not import the project."""
import os

from corekit import shared_task


@shared_task
def add(x, y):
    return x + y


@shared_task(bind=True)
def installed_apps(self):
    """What the worker's Django knows: it was set up before the task ran."""
    from django.apps import apps

    return sorted(config.label for config in apps.get_app_configs())


@shared_task
def welcome(user_pk):
    """Sent on commit (demoapp.accounts.sign_up): the user's row is there."""
    from django.contrib.auth.models import User

    return f"welcome, {User.objects.get(pk=user_pk).username}"


@shared_task
def count_users():
    """A database query; says whether the task found a connection open."""
    from django.contrib.auth.models import User
    from django.db import connection

    fresh = connection.connection is None
    return {"pid": os.getpid(), "fresh": fresh, "users": User.objects.count()}


@shared_task
async def acount_users():
    """count_users through Django's async ORM, in an ``async def`` task (the
    asyncio pool): says whether the task found a connection open in the
    thread its ORM calls run in, and which thread that is."""
    import threading

    from asgiref.sync import sync_to_async
    from django.contrib.auth.models import User
    from django.db import connection

    def orm_thread():  # sync_to_async's thread, as for User.objects.acount()
        return connection.connection is not None, threading.current_thread().name

    was_open, thread = await sync_to_async(orm_thread)()
    users = await User.objects.acount()
    now_open, _ = await sync_to_async(orm_thread)()  # acount() connected in that thread
    return {"fresh": not was_open, "thread": thread, "connected_there": now_open,
            "users": users}


@shared_task
def add_user(name):
    from django.contrib.auth.models import User

    return User.objects.create(username=name).pk


@shared_task
def open_database_files():
    """How many files this worker process holds open on the database."""
    from django.conf import settings

    name = os.path.realpath(settings.DATABASES["default"]["NAME"])
    held = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            held += os.path.realpath(f"/proc/self/fd/{fd}") == name
        except OSError:
            pass
    return held


@shared_task
def inherited_connections():
    """Connections this process set aside, inherited from the worker that forked it."""
    from corekit.contrib.django.worker_step import _inherited

    return len(_inherited)


@shared_task
def refuse(reason):
    """Fails: the admin shows failures beside successes."""
    raise ValueError(reason)
