"""corekit: a distributed task queue with Celery's API and wire format."""
from __future__ import annotations

# First of all: a pool named by `corekit worker -P NAME` whose plugin declares an
# early patch (green threads) patches the interpreter before any other import.
from corekit.early import patch_for_pool as _patch_for_pool  # noqa: E402

_patch_for_pool()

__version__ = "0.1.0"

from corekit import states  # noqa: E402
from corekit.app import Corekit, current_app  # noqa: E402
from corekit.canvas import (Signature, chain, chord, chunks, group, maybe_signature,  # noqa: E402
                            signature, subtask, xmap, xstarmap)
from corekit.exceptions import (ChordError, CorekitError, Ignore,  # noqa: E402
                                ImproperlyConfigured, MaxRetriesExceededError, NotRegistered, PluginNotFound,
                                PublishError,
                                Retry, SoftTimeLimitExceeded, TaskRevokedError,
                                TimeLimitExceeded, TimeoutError, WorkerLostError)
from corekit.log import get_task_logger  # noqa: E402
from corekit.result import AsyncResult, EagerResult, GroupResult, ResultSet  # noqa: E402
from corekit.task import Task  # noqa: E402

__all__ = [
    "__version__", "Corekit", "current_app", "Task", "AsyncResult", "EagerResult", "states",
    "get_task_logger", "CorekitError", "ImproperlyConfigured", "PluginNotFound",
    "NotRegistered", "PublishError", "Retry", "MaxRetriesExceededError", "TaskRevokedError", "TimeoutError",
    "SoftTimeLimitExceeded", "TimeLimitExceeded", "WorkerLostError", "Ignore", "ChordError",
    "GroupResult", "ResultSet", "Signature", "signature", "subtask", "maybe_signature",
    "chain", "group", "chord", "chunks", "xmap", "xstarmap",
]
