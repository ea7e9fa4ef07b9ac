"""``corekit worker -B`` on every worker: each run is fired once and run once.

The project is Celery's periodic-tasks example as its docs write it
(``on_after_configure`` with ``add_periodic_task``, plus ``beat_schedule``),
with the import changed to corekit's."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from beat_helpers import wait_until

from corekit import Corekit
from corekit.schedules.periodic import PeriodicTasks

pytestmark = pytest.mark.slow

PROJ = '''
import os
from corekit import Corekit
from corekit.schedules import crontab

app = Corekit("proj", broker=os.environ["TEST_BROKER"], backend=os.environ["TEST_BROKER"])
app.conf.beat_lease_timeout = 1.0
LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs.log")

@app.on_after_configure.connect
def setup_periodic_tasks(sender, **kwargs):
    # Calls test('hello') every 0.5 seconds.
    sender.add_periodic_task(0.5, test.s('hello'), name='add every 0.5')
    # Calls test('world') every second
    sender.add_periodic_task(1.0, test.s('world'), expires=10)
    # Executes every Monday morning at 7:30 a.m.
    sender.add_periodic_task(
        crontab(hour=7, minute=30, day_of_week=1),
        test.s('Happy Mondays!'),
    )

app.conf.beat_schedule = {
    'add-every-second': {
        'task': 'proj.add',
        'schedule': 1.0,
        'args': (16, 16)
    },
}
app.conf.timezone = 'UTC'

def record(task_id, what):
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{task_id} {what}\\n".encode())
    os.close(fd)

@app.task(bind=True)
def test(self, arg):
    record(self.request.id, arg)

@app.task(bind=True)
def add(self, x, y):
    record(self.request.id, x + y)
    return x + y
'''


def test_every_worker_with_dash_b_fires_each_run_once(tmp_path: Path) -> None:
    broker = f"sqlite://{tmp_path / 'broker.db'}"
    (tmp_path / "proj.py").write_text(PROJ)
    env = {**os.environ, "TEST_BROKER": broker}
    workers = []
    for n in range(2):
        log = open(tmp_path / f"w{n}.log", "w")
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "corekit", "-A", "proj", "worker", "-B", "-l", "info",
             "-c", "2", "-n", f"w{n}@%h", "--no-banner"], cwd=tmp_path, env=env,
            stdout=log, stderr=subprocess.STDOUT))
        log.close()
    app = Corekit("view", broker=broker, backend=broker)
    tasks = PeriodicTasks(app)
    runs_log = tmp_path / "runs.log"

    def ran() -> list[list[str]]:
        text = runs_log.read_text() if runs_log.exists() else ""
        return [line.split(" ", 1) for line in text.splitlines()]

    try:
        wait_until(lambda: len([r for r in ran() if r[1] == "hello"]) >= 8, timeout=90,
                   what="runs on the workers")
        names = {row.name for row in tasks.list()}
        assert names == {"add every 0.5", "proj.test('world')", "add-every-second",
                         "proj.test('Happy Mondays!')"}
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(60)
        tasks.close()
        app.close()
    logs = "".join((tmp_path / f"w{n}.log").read_text() for n in range(2))
    assert "leading" in logs and "Traceback" not in logs, logs
    per_id = Counter(task_id for task_id, _ in ran())
    assert per_id and set(per_id.values()) == {1}, per_id
    by_arg = Counter(arg for _, arg in ran())
    assert by_arg["hello"] >= 8 and by_arg["world"] >= 3 and by_arg["32"] >= 3
