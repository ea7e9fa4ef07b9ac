"""``sqlite://`` broadcast subscriptions closed from another thread while
they poll: a monitor or events receiver stopping does exactly that, and
closing an sqlite3 connection that another thread is executing on crashes
the interpreter (a CI run died of it: "Fatal Python error: Segmentation
fault" in SQLiteSubscription.get while the web monitor stopped)."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from corekit import Corekit
from corekit.messages import Message


def transport(tmp_path: Path):  # type: ignore[no-untyped-def]
    app = Corekit("bcast", broker=f"sqlite://{tmp_path / 'b.sqlite3'}",
                  backend=f"sqlite://{tmp_path / 'b.sqlite3'}")
    conn = app.connection()
    conn.connect()
    return conn


def test_close_waits_for_a_poll_in_another_thread_to_let_go(tmp_path: Path) -> None:
    conn = transport(tmp_path)
    sub = conn.subscribe_broadcast(["celeryev"])
    polling, inside = threading.Event(), []
    poll = sub._poll

    def watched_poll(timeout: float) -> list[Message]:
        inside.append(True)
        polling.set()
        try:
            return poll(timeout)
        finally:
            inside.pop()

    sub._poll = watched_poll  # type: ignore[method-assign]
    closed_while_polling = []
    db_close = sub.db.close
    sub.db.close = lambda: (closed_while_polling.append(bool(inside)), db_close())  # type: ignore[method-assign]
    got: list[list[Message]] = []
    reader = threading.Thread(target=lambda: got.append(sub.get(30.0)))
    reader.start()
    assert polling.wait(10)
    started = time.monotonic()
    sub.close()
    reader.join(10)
    assert not reader.is_alive() and got == [[]]
    assert time.monotonic() - started < 5  # the 30 s poll ended at the close
    assert closed_while_polling == [False]
    conn.close()


def test_closing_at_any_moment_of_a_busy_poll_never_breaks(tmp_path: Path) -> None:
    conn = transport(tmp_path)
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            conn.publish_broadcast("celeryev", [Message(body=b"{}", headers={}, properties={},
                                                        content_type="application/json",
                                                        routing_key="task.x")])

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    errors: list[BaseException] = []
    try:
        for i in range(60):
            sub = conn.subscribe_broadcast(["celeryev"])

            def read(sub=sub) -> None:  # type: ignore[no-untyped-def]
                try:
                    while not sub.closed:
                        sub.get(0.05)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            reader = threading.Thread(target=read)
            reader.start()
            time.sleep(0.001 * (i % 5))
            sub.close()
            reader.join(10)
            assert not reader.is_alive()
    finally:
        stop.set()
        publisher.join(10)
        conn.close()
    assert errors == []
