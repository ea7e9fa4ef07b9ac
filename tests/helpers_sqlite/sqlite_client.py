"""A separate OS process on a sqlite:// broker, for tests/plugins/sqlite/test_sqlite_multiprocess.py.

    sqlite_client.py drain   URL READY GO OUT BATCH WORK  fetch + ack until empty; ids to OUT
    sqlite_client.py publish URL READY GO START COUNT publish COUNT messages in batches of 10
    sqlite_client.py hold    URL COUNT                fetch COUNT, print them, heartbeat forever
    sqlite_client.py incr    URL READY GO KEY COUNT OUT  incr the result backend's counter
                                                      KEY COUNT times; the values to OUT

READY is touched once the process is up and connected; it then waits for GO
to exist, so that the test can release every process at the same moment.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable

from corekit.pluginmanager import default_manager
from corekit.serialization import Codecs
from corekit.messages import Message
from corekit.transport import Transport


def transport(url: str, **options: float) -> Transport:
    t: Transport = default_manager().get("transports", "sqlite")(url, options)
    return t


def message(n: int) -> Message:
    return Message(body=b"%d" % n, headers={"n": n, "pid": os.getpid()},
                   properties={}, content_type="application/json", queue="q")


def barrier(ready: str, go: str) -> None:
    Path(ready).touch()
    deadline = time.monotonic() + 30
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            sys.exit("never released")
        time.sleep(0.005)


def drain(url: str, ready: str, go: str, out: str, batch: str, work: str) -> None:
    """WORK seconds per batch stand for running the tasks: a worker does not
    hammer the write lock back to back, and SQLite's lock is not fair."""
    t = transport(url)
    t.connect()
    barrier(ready, go)
    got: list[str] = []
    while messages := t.fetch(["q"], int(batch), 0.3):
        got.extend(str(m.headers["n"]) for m in messages)
        time.sleep(float(work))
        t.ack(messages)
    Path(out).write_text("\n".join(got))
    t.close()


def publish(url: str, ready: str, go: str, start: str, count: str) -> None:
    t = transport(url)  # not connected: the file does not exist until they all race
    barrier(ready, go)
    first, n = int(start), int(count)
    for i in range(first, first + n, 10):
        t.publish([message(k) for k in range(i, min(i + 10, first + n))])
    t.close()


def hold(url: str, count: str) -> None:
    t = transport(url, heartbeat=0.05)
    held = t.fetch(["q"], int(count), 10.0)
    print("held", *(m.headers["n"] for m in held), flush=True)
    while True:  # alive and heartbeating until killed; never acks
        t.heartbeat()
        time.sleep(0.05)


def incr(url: str, ready: str, go: str, key: str, count: str, out: str) -> None:
    codecs = Codecs(default_manager().registry("serializers").values(), [])
    backend = default_manager().get("result_backends", "sqlite")(url, codecs, {})
    backend.get_counter(key)  # connected before the race
    barrier(ready, go)
    Path(out).write_text("\n".join(str(backend.incr(key)) for _ in range(int(count))))
    backend.close()


if __name__ == "__main__":
    modes: dict[str, Callable[..., None]] = {"drain": drain, "publish": publish, "hold": hold,
                                             "incr": incr}
    modes[sys.argv[1]](*sys.argv[2:])
