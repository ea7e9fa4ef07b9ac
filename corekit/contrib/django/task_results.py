"""Django's task results read from corekit's result backend: a stored
meta as a Django ``TaskResult`` (`result_from_meta`), and the result ids
`CorekitBackend` gives (`new_result_id`), which carry when they were made.

What each Django field is read from:

- ``status``: the corekit state (`STATUS`): PENDING (the record stored at
  enqueue) is READY, STARTED is RUNNING, SUCCESS is SUCCESSFUL, FAILURE
  is FAILED, REVOKED is FAILED (CANCELLED where the framework has it),
  RETRY is READY.
- ``enqueued_at``: the id, a UUID version 7 (RFC 9562): its first 48 bits
  are the enqueue time in milliseconds.
- ``started_at`` and ``last_attempted_at``: ``date_started`` (stored with
  ``result_extended``, which Django tasks always have); ``finished_at``:
  ``date_done``.
- ``worker_ids``: the worker's hostname; ``errors``: the exception's class
  path and the traceback.
"""
from __future__ import annotations

import os
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Mapping

from corekit import states
from corekit.result_backend import CELERY_MODULES
from corekit.contrib.django.task_framework import framework

#: the message header that makes a task message a Django task's: its value
#: is the alias of the backend that sent it (``TASKS`` key)
DJANGO_TASK_HEADER = "django_task_backend"


def new_result_id() -> str:
    """A UUID version 7: 48 bits of Unix time in milliseconds, then 74
    random bits (RFC 9562), as text."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = ((millis & (1 << 48) - 1) << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64
             | 0b10 << 62 | rand & (1 << 62) - 1)
    return str(uuid.UUID(int=value))


def enqueued_at(result_id: str) -> datetime | None:
    """When the id was made, for an id from `new_result_id`; else None."""
    try:
        parsed = uuid.UUID(str(result_id))
    except ValueError:
        return None
    if parsed.version != 7:
        return None
    return datetime.fromtimestamp((parsed.int >> 80) / 1000, timezone.utc)


def corekit_priority(priority: int) -> int:
    """Django's priority (-100 to 100, higher first) as corekit's (0 to 9,
    higher first): twenty Django steps per corekit step, Django's default
    0 is corekit's 5, 80 and above is 9."""
    return min(9, max(0, (int(priority) + 100) // 20))


def status_of(state: str) -> Any:
    """Django's ``TaskResultStatus`` for a corekit state."""
    status = framework().TaskResultStatus
    if state == states.SUCCESS:
        return status.SUCCESSFUL
    if state == states.FAILURE:
        return status.FAILED
    if state == states.REVOKED:
        return getattr(status, "CANCELLED", status.FAILED)
    if state in (states.PENDING, states.RECEIVED, states.RETRY):
        return status.READY
    return status.RUNNING  # STARTED, and a task's own progress states


def error_of(meta: Mapping[str, Any]) -> Any:
    """The ``TaskError`` of a failed meta: class path and traceback (an
    exception stored under Celery's module names is corekit's)."""
    exc = meta.get("result")
    name, module = "Exception", "builtins"
    if isinstance(exc, dict):
        name = str(exc.get("exc_type") or name)
        module = str(exc.get("exc_module") or module)
        if module in CELERY_MODULES:
            from corekit import exceptions

            module = "corekit.exceptions" if hasattr(exceptions, name) else module
    return framework().TaskError(exception_class_path=f"{module}.{name}",
                                 traceback=str(meta.get("traceback") or ""))


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def result_from_meta(result_id: str, meta: Mapping[str, Any], alias: str,
                     django_task: Any) -> Any:
    """The ``TaskResult`` of *django_task* that *meta* (what corekit's
    result backend holds for *result_id*) describes."""
    fw = framework()
    status = status_of(str(meta.get("status")))
    started = _when(meta.get("date_started"))
    finished = _when(meta.get("date_done")) if status in (
        fw.TaskResultStatus.SUCCESSFUL, fw.TaskResultStatus.FAILED,
        getattr(fw.TaskResultStatus, "CANCELLED", None)) else None
    worker = meta.get("worker") or meta.get("hostname")
    args, kwargs = meta.get("args"), meta.get("kwargs")
    result = fw.TaskResult(
        task=django_task, id=result_id, status=status, enqueued_at=enqueued_at(result_id),
        started_at=started, finished_at=finished, last_attempted_at=started,
        args=list(args) if isinstance(args, (list, tuple)) else [],
        kwargs=dict(kwargs) if isinstance(kwargs, dict) else {},
        backend=str(meta.get(DJANGO_TASK_HEADER) or alias),
        errors=[error_of(meta)] if status == fw.TaskResultStatus.FAILED else [],
        worker_ids=[str(worker)] if worker and status != fw.TaskResultStatus.READY else [])
    if status == fw.TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", meta.get("result"))
    return result
