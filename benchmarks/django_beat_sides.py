"""The two sides ``bench_django_beat.py`` compares: periodic tasks as Django
rows, fired by corekit's beat with its ``django-db`` schedule store, and by
Celery beat with django-celery-beat's ``DatabaseScheduler``.  The beats,
observers and figures are ``bench_beat.py``'s (`beat_sides.Side`); what
differs is here: each system's Django project (settings and app module, in
the work directory), a fresh SQLite database per beat, its rows written
through the system's own ORM models before the beat starts, and a helper
process that adds a periodic task with ``save()`` while the beat runs.

Each project has ``INSTALLED_APPS`` of ``django.contrib.contenttypes`` and
the system's app (``corekit.contrib.django``, ``django_celery_beat``), and
its own SQLite file in WAL mode, with ``transaction_mode: IMMEDIATE`` (as
``examples/django/proj/settings.py`` has).  The beats:

    corekit -A djbeatk beat -l warning       (COREKIT_BEAT_STORE_URL = "django-db")
    celery -A djbeatc beat -l warning -S django_celery_beat.schedulers:DatabaseScheduler

Rows: entry ``i`` is the ``PeriodicTask`` named ``s{i:05d}``, task
``<module>.tick``, ``args`` ``[i]``, on one ``IntervalSchedule`` of
``--every`` seconds (per-second) or of an hour (``change``: a table the
beat has loaded and waits on).  Run as a helper process (cwd: the work
directory, ``DJANGO_SETTINGS_MODULE`` and ``BENCH_DATABASE`` set):

    python benchmarks/django_beat_sides.py setup corekit|celery SCENARIO ENTRIES EVERY
    python benchmarks/django_beat_sides.py change corekit|celery

``change`` reads ``add K`` lines on stdin: it creates the periodic task
``c{K:05d}`` (``args`` ``[K]``) on a ``ClockedSchedule`` at the current
time (django-celery-beat requires ``one_off`` with it), due at once, and
answers with ``<time before> <time after>`` its ``create()`` (its
``save()``: the admin's path) returned.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from beat_sides import Side, log  # noqa: E402

USAGE = """usage: django_beat_sides.py setup corekit|celery SCENARIO ENTRIES EVERY
       django_beat_sides.py change corekit|celery"""

SETTINGS = '''
import os

SECRET_KEY = "bench-only-not-secret"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django.contrib.contenttypes", {app!r}]
DATABASES = {{"default": {{
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.environ["BENCH_DATABASE"],
    "OPTIONS": {{"transaction_mode": "IMMEDIATE", "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL"}},
}}}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
'''

COREKIT_SETTINGS = SETTINGS.format(app="corekit.contrib.django") + '''
COREKIT_BROKER_URL = os.environ["BENCH_BROKER"]
COREKIT_BEAT_STORE_URL = "django-db"
COREKIT_TIMEZONE = "UTC"
'''

CELERY_SETTINGS = SETTINGS.format(app="django_celery_beat") + '''
CELERY_BROKER_URL = os.environ["BENCH_BROKER"]
CELERY_TIMEZONE = "UTC"
'''

COREKIT_PROJ = '''
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djbeatk_settings")

from corekit import Corekit

app = Corekit("djbeatk")
app.config_from_object("django.conf:settings", namespace="COREKIT")


@app.task(name="djbeatk.tick")
def tick(i):
    return None
'''

CELERY_PROJ = '''
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djbeatc_settings")

from celery import Celery
from celery.signals import beat_init

app = Celery("djbeatc")
app.config_from_object("django.conf:settings", namespace="CELERY")


@app.task(name="djbeatc.tick")
def tick(i):
    return None


@beat_init.connect
def _ready(**kwargs):
    path = os.environ.get("BENCH_READY_FILE")
    if path:
        open(path, "w").close()
'''

#: the change scenario's table: entries every hour (none fires while it is measured)
CHANGE_EVERY = 3600


class DjangoSide(Side):
    """One system's Django project in *workdir*; each beat gets a fresh
    database, its rows written by the ``setup`` helper before it starts."""

    def __init__(self, name: str, workdir: Path, broker_url: str) -> None:
        self.name, self.workdir, self.broker_url = name, workdir, broker_url
        self.kind = "celery" if name == "Celery" else "corekit"
        self.module = "djbeatc" if name == "Celery" else "djbeatk"
        (workdir / f"{self.module}.py").write_text(CELERY_PROJ if name == "Celery"
                                                   else COREKIT_PROJ)
        (workdir / f"{self.module}_settings.py").write_text(
            CELERY_SETTINGS if name == "Celery" else COREKIT_SETTINGS)
        self.database = workdir / f"{self.module}.sqlite3"

    def env(self, tag: str = "") -> dict[str, str]:
        return {"DJANGO_SETTINGS_MODULE": f"{self.module}_settings",
                "BENCH_DATABASE": str(self.database), "BENCH_BROKER": self.broker_url,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(self.workdir),
                                                            os.environ.get("PYTHONPATH")]))}

    def beat_cmd(self, tag: str) -> list[str]:
        py = self.python(tag)
        if self.name == "Celery":
            return [*py, "-m", "celery", "-A", self.module, "beat", "-l", "warning",
                    "-S", "django_celery_beat.schedulers:DatabaseScheduler"]
        return [*py, "-m", "corekit", "-A", self.module, "beat", "-l", "warning"]

    def helper(self, *args: str) -> list[str]:
        return [sys.executable, str(Path(__file__).resolve()), *args]

    def start_beat(self, scenario: str, entries: int, every: float, tag: str
                   ) -> tuple[subprocess.Popen[bytes], Path, Path]:
        """A new database with *entries* rows (`setup`), then the beat."""
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.database}{suffix}").unlink(missing_ok=True)
        started = time.monotonic()
        subprocess.run(self.helper("setup", self.kind, scenario, str(entries), repr(every)),
                       cwd=self.workdir, env={**os.environ, **self.env()}, check=True)
        log(f"{self.name}: {entries:,} periodic tasks written through its ORM in "
            f"{time.monotonic() - started:.1f} s (migrate included)")
        return super().start_beat(scenario, entries, every, tag)

    def start_changer(self) -> subprocess.Popen[str]:
        return subprocess.Popen(self.helper("change", self.kind), cwd=self.workdir,
                                env={**os.environ, **self.env()}, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, bufsize=1,
                                start_new_session=True)

    def _query(self, sql: str) -> list[tuple[object, ...]]:
        db = sqlite3.connect(self.database, timeout=20)  # reads only
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()

    def leads(self, ready: Path) -> bool:
        """corekit: the lease row (its ``django-db`` store) has a holder; Celery: beat_init."""
        if self.name == "Celery":
            return ready.exists()
        try:
            rows = self._query("SELECT holder, expires FROM corekit_beatlease WHERE id = 1")
        except sqlite3.OperationalError:  # no table yet
            return False
        return bool(rows and rows[0][0] and float(rows[0][1]) > time.time())  # type: ignore

    def stored_bases(self) -> dict[str, float]:
        return {str(name): float(base) for name, base in self._query(  # type: ignore[arg-type]
            "SELECT name, changed_unix FROM corekit_periodictask")}


# -- the helper processes ----------------------------------------------------------

def _models(kind: str) -> tuple[type, type, type]:
    import django

    django.setup()
    if kind == "corekit":
        from corekit.contrib.django.schedule_models import (ClockedSchedule, IntervalSchedule,
                                                            PeriodicTask)
    else:
        from django_celery_beat.models import ClockedSchedule, IntervalSchedule, PeriodicTask
    return IntervalSchedule, ClockedSchedule, PeriodicTask


def setup(kind: str, scenario: str, entries: int, every: float) -> None:
    """Migrate, then write *entries* interval tasks with ``create()`` (``save()``)."""
    from django.core.management import call_command
    from django.db import transaction

    IntervalSchedule, _, PeriodicTask = _models(kind)
    call_command("migrate", verbosity=0)
    seconds = CHANGE_EVERY if scenario == "change" else every
    if seconds != int(seconds) or seconds < 1:
        sys.exit(f"--every must be a whole number of seconds (an IntervalSchedule), "
                 f"not {every!r}")
    module = "djbeatk" if kind == "corekit" else "djbeatc"
    with transaction.atomic():
        sched, _ = IntervalSchedule.objects.get_or_create(every=int(seconds), period="seconds")
        for i in range(entries):
            PeriodicTask.objects.create(name=f"s{i:05d}", task=f"{module}.tick", interval=sched,
                                        args=json.dumps([i]))


def change(kind: str) -> None:
    """Serve ``add K`` lines (see the module docstring) until stdin closes."""
    from datetime import datetime, timezone

    _, ClockedSchedule, PeriodicTask = _models(kind)
    module = "djbeatk" if kind == "corekit" else "djbeatc"
    extra = {"one_off": True} if kind == "celery" else {}
    print("ready", flush=True)
    for line in sys.stdin:
        k = int(line.split()[1])
        before = time.time()
        when = ClockedSchedule.objects.create(
            clocked_time=datetime.fromtimestamp(before, timezone.utc))
        PeriodicTask.objects.create(name=f"c{k:05d}", task=f"{module}.tick", clocked=when,
                                    args=json.dumps([k]), **extra)
        print(f"{before!r} {time.time()!r}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "setup":
        setup(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    elif len(sys.argv) == 3 and sys.argv[1] == "change":
        change(sys.argv[2])
    else:
        sys.exit(USAGE)
