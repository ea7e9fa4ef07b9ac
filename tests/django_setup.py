"""Django configured for good in a process, on a SQLite file: for the suites
that run the ``django-db`` parts in a pytest of their own (the contract
suites, the beat replicas), started from tests/contrib/django."""
from __future__ import annotations


def set_django_up(database: str, migrate: bool = True) -> None:
    """Configure Django on *database* (the apps corekit's models need), set it
    up, and with *migrate* create the tables."""
    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth",
                        "corekit.contrib.django"], USE_TZ=True,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": database,
                               "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30}}})
    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
