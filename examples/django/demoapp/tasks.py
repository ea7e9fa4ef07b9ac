"""Tasks of a reusable app: @shared_task, so the app does not import the project."""
from corekit import shared_task


@shared_task
def add(x, y):
    return x + y


@shared_task(bind=True)
def installed_apps(self):
    """What the worker's Django knows: it was set up before the task ran."""
    from django.apps import apps

    return sorted(config.label for config in apps.get_app_configs())
