"""Django's own tasks (``@task`` of django.tasks; of the django-tasks
backport on Django 5.2), run by corekit workers: settings.TASKS names
corekit.contrib.django.tasks.CorekitBackend."""
import asyncio

try:
    from django.tasks import task  # Django 6.0 and later
except ImportError:
    from django_tasks import task  # Django 5.2: pip install "django-tasks>=0.12"


@task
def add(x, y):
    return x + y


@task
def refuse(reason):
    raise ValueError(reason)


@task
async def slow_add(x, y):
    """An ``async def`` task: awaited by the worker."""
    await asyncio.sleep(0.01)
    return x + y


@task(takes_context=True)
def whoami(context, label):
    """Its own result as the worker sees it (Django's TaskContext), and the
    corekit message it came in."""
    from corekit.request import current_request

    delivery = current_request().delivery_info
    return {"label": label, "id": context.task_result.id, "attempt": context.attempt,
            "status": str(context.task_result.status), "queue": delivery["queue"],
            "priority": delivery["priority"]}


@task(queue_name="emails")
def send_welcome(name):
    """On the "emails" queue (TASKS' QUEUES lists it): a worker started
    with -Q emails runs it."""
    return f"welcome, {name}"
