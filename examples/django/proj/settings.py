"""Settings of the example project (development values: not for production)."""
import os
from pathlib import Path

from corekit.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corekit.contrib.django",
    "demoapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "proj.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]

DATABASES = {"default": {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.environ.get("PROJ_DATABASE", str(BASE_DIR / "db.sqlite3")),
    # workers write from several threads: take SQLite's write lock up front
    "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    # seconds a connection may be reused (0: one per task or request)
    "CONN_MAX_AGE": int(os.environ.get("PROJ_CONN_MAX_AGE", "0")),
}}

USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# corekit's app for `manage.py corekit`; by default proj.corekit:app, beside this module
if os.environ.get("PROJ_COREKIT_APP"):
    COREKIT_APP = os.environ["PROJ_COREKIT_APP"]

# corekit: every setting, prefixed COREKIT_ (app.config_from_object(..., namespace="COREKIT"))
COREKIT_BROKER_URL = os.environ.get("PROJ_BROKER_URL", f"sqlite://{BASE_DIR / 'broker.sqlite3'}")
COREKIT_RESULT_BACKEND = os.environ.get("PROJ_RESULT_BACKEND", COREKIT_BROKER_URL)
COREKIT_TASK_TRACK_STARTED = True
# the task's name and worker with its result (the admin filters by them)
COREKIT_RESULT_EXTENDED = True
COREKIT_TIMEZONE = TIME_ZONE
# periodic tasks in this database, edited in the admin (PROJ_BEAT_STORE: another store's URL)
COREKIT_BEAT_STORE_URL = os.environ.get("PROJ_BEAT_STORE", "django-db")
# periodic tasks of the code, written to the store at each beat start (read-only in the admin)
COREKIT_BEAT_SCHEDULE = {
    "cleanup-expired-results": {"task": "celery.backend_cleanup",
                                "schedule": crontab(hour=4, minute=0)},
}

# Django's own tasks (django.tasks; the django-tasks backport on Django 5.2) sent through
# corekit's app and run by its workers (demoapp/django_tasks.py)
TASKS = {"default": {"BACKEND": "corekit.contrib.django.tasks.CorekitBackend",
                     "QUEUES": ["default", "emails"]}}
