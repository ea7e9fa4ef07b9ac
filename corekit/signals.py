"""Signals for user code, with Celery's names and arguments.

```python
from corekit.signals import task_prerun

@task_prerun.connect
def started(sender=None, task_id=None, task=None, args=None, kwargs=None, **extra):
    ...

@task_prerun.connect(sender="proj.add")      # only for that task (name or object)
def add_started(**kwargs): ...
```

Receivers take keyword arguments (always accept ``**kwargs``: more may be
added).  A receiver that raises is logged and does not stop the others or
the task.  Sending a signal nobody listens to costs one attribute check, so
the worker's hot path pays nothing for signals it does not use.
"""
from __future__ import annotations

import logging
import threading
import weakref
from typing import Any, Callable

logger = logging.getLogger("corekit.signals")

Receiver = Callable[..., Any]


class Signal:
    """A named hook: `connect` receivers, `send` to all of them."""

    def __init__(self, name: str, doc: str = "") -> None:
        self.name = name
        self.__doc__ = doc
        #: ``(receiver reference, sender filter)``; empty means nobody listens
        self.receivers: list[tuple[Any, Any]] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Signal {self.name}>"

    def connect(self, receiver: Receiver | None = None, *, sender: Any = None,
                weak: bool = True) -> Any:
        """Add *receiver* (also usable as ``@signal.connect`` or
        ``@signal.connect(sender=...)``); *sender* filters by sender, or by
        name for tasks.  Weak references by default, as in Celery: a
        receiver defined inside a function must be kept alive by the caller
        or connected with ``weak=False``."""
        if receiver is None:
            return lambda fn: self.connect(fn, sender=sender, weak=weak)
        ref: Any = _reference(receiver) if weak else (lambda: receiver)
        with self._lock:
            self.receivers = [*self.receivers, (ref, sender)]
        return receiver

    def disconnect(self, receiver: Receiver, sender: Any = None) -> None:
        with self._lock:
            self.receivers = [(ref, s) for ref, s in self.receivers
                              if not (ref() == receiver and s == sender)]

    def send(self, sender: Any, **named: Any) -> list[tuple[Receiver, Any]]:
        """Call every receiver for *sender*; return ``(receiver, result)``
        pairs (the result is the exception for a receiver that raised)."""
        replies = []
        dead = False
        for ref, wanted in self.receivers:
            receiver = ref()
            if receiver is None:
                dead = True
                continue
            if wanted is not None and not _matches(wanted, sender):
                continue
            try:
                replies.append((receiver, receiver(signal=self, sender=sender, **named)))
            except Exception as exc:
                logger.exception("Signal receiver %r for %s raised", receiver, self.name)
                replies.append((receiver, exc))
        if dead:
            with self._lock:
                self.receivers = [(ref, s) for ref, s in self.receivers if ref() is not None]
        return replies


def _reference(receiver: Receiver) -> Any:
    if hasattr(receiver, "__self__") and hasattr(receiver, "__func__"):
        return weakref.WeakMethod(receiver)  # type: ignore[arg-type]
    try:
        return weakref.ref(receiver)
    except TypeError:  # builtins and some callables cannot be weakly referenced
        return lambda: receiver


def _matches(wanted: Any, sender: Any) -> bool:
    if wanted is sender or wanted == sender:
        return True
    name = getattr(sender, "name", None)
    return name is not None and (wanted == name or getattr(wanted, "name", None) == name)


# -- tasks -------------------------------------------------------------------------
before_task_publish = Signal("before_task_publish", "sender=task name; body, exchange, "
                             "routing_key, headers, properties, declare, retry_policy: "
                             "before a task message is published (headers may be changed)")
after_task_publish = Signal("after_task_publish", "sender=task name; body, exchange, "
                            "routing_key, headers: after it was published")
task_received = Signal("task_received", "sender=the consumer; request: a worker took a "
                       "task message")
task_prerun = Signal("task_prerun", "sender=task; task_id, task, args, kwargs")
task_postrun = Signal("task_postrun", "sender=task; task_id, task, args, kwargs, retval, "
                      "state")
task_success = Signal("task_success", "sender=task; result")
task_failure = Signal("task_failure", "sender=task; task_id, exception, args, kwargs, "
                      "traceback, einfo")
task_retry = Signal("task_retry", "sender=task; request, reason, einfo")
task_revoked = Signal("task_revoked", "sender=task; request, terminated, signum, expired")

# -- workers -----------------------------------------------------------------------
worker_init = Signal("worker_init", "sender=worker: before it starts")
worker_ready = Signal("worker_ready", "sender=worker: it consumes")
worker_shutdown = Signal("worker_shutdown", "sender=worker: it stopped")
worker_process_init = Signal("worker_process_init", "a pool's child process started")

__all__ = ["Signal", "before_task_publish", "after_task_publish", "task_received",
           "task_prerun", "task_postrun", "task_success", "task_failure", "task_retry",
           "task_revoked", "worker_init", "worker_ready", "worker_shutdown",
           "worker_process_init"]
