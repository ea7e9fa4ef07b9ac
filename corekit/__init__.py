"""corekit: a distributed task queue with Celery's API and wire format."""
from __future__ import annotations

# First of all: a pool named by `corekit worker -P NAME` whose plugin declares an
# early patch (green threads) patches the interpreter before any other import.
from corekit.early import patch_for_pool as _patch_for_pool  # noqa: E402

_patch_for_pool()

from typing import TYPE_CHECKING, Any  # noqa: E402

__version__ = "0.1.0"

# The public API is imported on first use (PEP 562), so `import corekit` and
# `corekit --help` do not pay for the app, canvas and results modules.
_EXPORTS = {
    "states": "corekit.states",
    "Corekit": "corekit.app", "current_app": "corekit.app",
    "Signature": "corekit.canvas", "chain": "corekit.canvas", "chord": "corekit.canvas",
    "chunks": "corekit.canvas", "group": "corekit.canvas", "maybe_signature": "corekit.canvas",
    "signature": "corekit.canvas", "subtask": "corekit.canvas", "xmap": "corekit.canvas",
    "xstarmap": "corekit.canvas",
    "get_task_logger": "corekit.log",
    "AsyncResult": "corekit.result", "EagerResult": "corekit.result",
    "GroupResult": "corekit.result", "ResultSet": "corekit.result",
    "Task": "corekit.task", "shared_task": "corekit.shared_tasks",
    **dict.fromkeys(["ChordError", "CorekitError", "Ignore", "ImproperlyConfigured",
                     "MaxRetriesExceededError", "NotRegistered", "PluginNotFound",
                     "PublishError", "Retry", "SoftTimeLimitExceeded", "TaskRevokedError",
                     "TimeLimitExceeded", "TimeoutError", "WorkerLostError"],
                    "corekit.exceptions"),
}

if TYPE_CHECKING:
    from corekit import states
    from corekit.app import Corekit, current_app
    from corekit.canvas import (Signature, chain, chord, chunks, group, maybe_signature,
                                signature, subtask, xmap, xstarmap)
    from corekit.exceptions import (ChordError, CorekitError, Ignore, ImproperlyConfigured,
                                    MaxRetriesExceededError, NotRegistered, PluginNotFound,
                                    PublishError, Retry, SoftTimeLimitExceeded,
                                    TaskRevokedError, TimeLimitExceeded, TimeoutError,
                                    WorkerLostError)
    from corekit.log import get_task_logger
    from corekit.result import AsyncResult, EagerResult, GroupResult, ResultSet
    from corekit.shared_tasks import shared_task
    from corekit.task import Task


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'corekit' has no attribute {name!r}")
    import importlib

    value = importlib.import_module(module)
    if name != "states":
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "__version__", "Corekit", "current_app", "Task", "shared_task", "AsyncResult", "EagerResult", "states",
    "get_task_logger", "CorekitError", "ImproperlyConfigured", "PluginNotFound",
    "NotRegistered", "PublishError", "Retry", "MaxRetriesExceededError", "TaskRevokedError", "TimeoutError",
    "SoftTimeLimitExceeded", "TimeLimitExceeded", "WorkerLostError", "Ignore", "ChordError",
    "GroupResult", "ResultSet", "Signature", "signature", "subtask", "maybe_signature",
    "chain", "group", "chord", "chunks", "xmap", "xstarmap",
]
