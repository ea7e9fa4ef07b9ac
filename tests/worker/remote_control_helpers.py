"""Shared by the remote control tests (test_remote_control_inspect.py,
test_remote_control_commands.py, test_remote_control_plugins.py): asking a
worker through ``app.control`` and reading its reply, and waiting on what
a command changes."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from corekit import Corekit
from corekit.worker import Worker

TIMEOUT = 10.0  # replies normally come in milliseconds; this is the give-up bound


def wait_until(predicate: Callable[[], Any], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def holds_for(predicate: Callable[[], Any], seconds: float) -> bool:
    """Whether *predicate* stays true for *seconds* (to see that nothing happens)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(0.02)
    return True


@contextmanager
def opened_at_exit(gate: threading.Event) -> Iterator[None]:
    """Let blocked tasks go when the block ends, even on a failure, so the
    worker can stop warmly (enter it after the worker)."""
    try:
        yield
    finally:
        gate.set()


def ask(app: Corekit, worker: Worker, command: str, **arguments: Any) -> Any:
    """*worker*'s reply to *command*, through ``app.control.broadcast``."""
    replies = app.control.broadcast(command, arguments, destination=[worker.hostname],
                                    reply=True, timeout=TIMEOUT)
    assert replies, f"{worker.hostname} did not answer {command}"
    [reply] = replies
    return reply[worker.hostname]


def inspect(app: Corekit, worker: Worker) -> Any:
    return app.control.inspect(destination=[worker.hostname], timeout=TIMEOUT)


def answer(replies: Any, worker: Worker) -> Any:
    """The one reply of *worker* in a control method's reply list."""
    assert replies and len(replies) == 1, replies
    return replies[0][worker.hostname]


def by_id(requests: list[dict[str, Any]], task_id: str) -> dict[str, Any]:
    [found] = [r for r in requests if r["id"] == task_id]
    return found
