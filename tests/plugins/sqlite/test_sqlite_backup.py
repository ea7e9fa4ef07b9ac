"""The production guide's backup of the SQLite broker file, run as written:
taken while producers write and a worker holds a task, the copy restores
every message it saw, the held one included (its lease lapses)."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from corekit import Corekit
from corekit.testing import start_worker

#: docs/production.md, "Backing up the SQLite file", as a user runs it
BACKUP = ('import sqlite3, sys; src, dst = sys.argv[1:]; '
          'sqlite3.connect(src).backup(sqlite3.connect(dst))')


def make_app(path: Path) -> Corekit:
    app = Corekit("backup", broker=f"sqlite://{path}", broker_heartbeat=0.2,
                  broker_lease_timeout=1.5)
    gate = path.parent / "release"

    @app.task(name="backup.echo")
    def echo(i: int) -> int:
        return i

    @app.task(name="backup.held", acks_late=True)
    def held() -> str:
        (path.parent / "started").touch()
        deadline = time.monotonic() + 30
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return "held"

    return app


def test_online_backup_restores_every_message_it_saw(tmp_path: Path) -> None:
    live, copy = tmp_path / "live" / "corekit.sqlite3", tmp_path / "copy" / "corekit.sqlite3"
    live.parent.mkdir()
    copy.parent.mkdir()
    app = make_app(live)
    before = [app.send_task("backup.echo", args=(i,)) for i in range(200)]
    held = app.send_task("backup.held")
    stop = threading.Event()
    during: list[str] = []

    def produce() -> None:  # writers keep writing while the copy is taken
        while not stop.is_set():
            during.append(app.send_task("backup.echo", args=(-1,)).id)

    with start_worker(make_app(live), concurrency=1, prefetch_multiplier=1):
        deadline = time.monotonic() + 30  # the worker runs `held` (acks_late: unacked)
        while not (live.parent / "started").exists():
            assert time.monotonic() < deadline, "held never started"
            time.sleep(0.02)
        writer = threading.Thread(target=produce)
        writer.start()
        out = subprocess.run([sys.executable, "-c", BACKUP, str(live), str(copy)],
                             capture_output=True, text=True, timeout=60)
        stop.set()
        writer.join()
        assert out.returncode == 0, out.stderr
        (tmp_path / "live" / "release").touch()
    restored = make_app(copy)
    (tmp_path / "copy" / "release").touch()
    with start_worker(restored, concurrency=4):
        assert [restored.AsyncResult(r.id).get(timeout=30) for r in before] == list(range(200))
        # held was running, unacked, when the copy was taken: it runs again from the copy
        assert restored.AsyncResult(held.id).get(timeout=30) == "held"
    assert during  # the copy was taken while messages were being written
