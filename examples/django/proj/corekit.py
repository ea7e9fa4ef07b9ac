"""The project's corekit app: settings from Django's, under COREKIT_."""
import os

from corekit import Corekit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")

app = Corekit("proj")
# COREKIT_BROKER_URL, COREKIT_RESULT_BACKEND, ... in proj/settings.py
app.config_from_object("django.conf:settings", namespace="COREKIT")
# the tasks.py of every app in INSTALLED_APPS
app.autodiscover_tasks()
