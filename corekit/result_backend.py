"""The result backend contract: where task states and results are kept."""
from __future__ import annotations

import importlib
import logging
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Sequence

from corekit import states
from corekit.exceptions import RemoteError
from corekit.exceptions import TimeoutError as CorekitTimeoutError
from corekit.transport import mask_url

if TYPE_CHECKING:
    from corekit.serialization import Codecs

logger = logging.getLogger("corekit.results")


def encode_exception(exc: BaseException) -> dict[str, Any]:
    """Celery's portable form of an exception (a class may name the module
    it is stored under with ``stored_module``, as `EncodeError` does)."""
    cls = type(exc)
    return {"exc_type": cls.__qualname__, "exc_message": list(_jsonable_args(exc.args)),
            "exc_module": cls.__dict__.get("stored_module") or cls.__module__}


def _jsonable_args(args: tuple[Any, ...]) -> list[Any]:
    out = []
    for a in args:
        out.append(a if isinstance(a, (str, int, float, bool, type(None))) else repr(a))
    return out


#: Modules whose exceptions are always rebuilt with their own type.
ALWAYS_ALLOWED = frozenset({"builtins", "corekit.exceptions"})
#: Celery's and kombu's exceptions come back as corekit's of the same name.
CELERY_MODULES = frozenset({"celery.exceptions", "kombu.exceptions", "billiard.exceptions"})


def decode_exception(meta: Any, allowed_modules: frozenset[str] = frozenset()
                     ) -> BaseException:
    """Rebuild an exception from its portable form, with its original type
    when that type is an exception in a module already imported, in
    *allowed_modules* (``result_exception_modules``), in builtins, or in
    corekit's, Celery's, kombu's or billiard's exceptions; a `RemoteError`
    (type name, module and message kept) else.  A meta never makes a module
    be imported that the settings do not allow."""
    if isinstance(meta, BaseException):
        return meta
    if not isinstance(meta, dict):
        return RemoteError("Exception", [repr(meta)], None)
    name, module = meta.get("exc_type", "Exception"), meta.get("exc_module")
    message = meta.get("exc_message", [])
    args = tuple(message) if isinstance(message, (list, tuple)) else (message,)
    cls = _exception_class(module, str(name), allowed_modules)
    if cls is not None:
        try:
            return cls(*args)
        except Exception:
            pass
    return RemoteError(name, list(args), module)


def _exception_class(module: Any, name: str, allowed: frozenset[str]
                     ) -> type[BaseException] | None:
    module = module or "builtins"
    if not isinstance(module, str):
        return None
    if module in CELERY_MODULES and "." not in name:
        from corekit import exceptions

        ours = getattr(exceptions, name, None)
        if isinstance(ours, type) and issubclass(ours, BaseException):
            return ours
    obj: Any = sys.modules.get(module)
    try:
        if obj is None:
            if (module not in allowed and module not in ALWAYS_ALLOWED
                    and module not in CELERY_MODULES):
                return None
            obj = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
    except Exception:
        return None
    return obj if isinstance(obj, type) and issubclass(obj, BaseException) else None


#: ``result_max_size``'s default: the largest encoded meta a backend stores.
RESULT_MAX_SIZE = 64 * 1024 * 1024
#: The keys every meta has; other keys (``reply_to``, ``hostname``) are extras.
META_KEYS = frozenset({"status", "result", "traceback", "children", "date_done", "task_id"})


def pending_meta(task_id: str) -> dict[str, Any]:
    return {"task_id": task_id, "status": states.PENDING, "result": None,
            "traceback": None, "children": [], "date_done": None}


def unencodable_meta(meta: Mapping[str, Any], why: str) -> dict[str, Any]:
    """The FAILURE meta that replaces *meta* when it cannot be stored:
    ``kombu.exceptions.EncodeError`` (Celery's shape), its plain-string
    extras (``reply_to``, ``hostname``) kept."""
    extras = {k: v for k, v in meta.items() if k not in META_KEYS and isinstance(v, str)}
    exc = {"exc_type": "EncodeError", "exc_message": [why], "exc_module": "kombu.exceptions"}
    return ResultBackend.make_meta(str(meta.get("task_id")), exc, states.FAILURE, **extras)


def revoked_meta(task_id: str, reason: str) -> dict[str, Any]:
    """A REVOKED meta as Celery stores it (``mark_as_revoked``): the result
    is a ``celery.exceptions.TaskRevokedError`` whose message is *reason*
    (``revoked``, ``expired`` or ``terminated``)."""
    exc = {"exc_type": "TaskRevokedError", "exc_message": [reason],
           "exc_module": "celery.exceptions"}
    return ResultBackend.make_meta(task_id, exc, states.REVOKED)


def revoked_reason(meta: Mapping[str, Any]) -> str:
    """Why a REVOKED meta's task did not finish: its exception's message,
    or (as corekit stored it before) the bare reason string."""
    result = meta.get("result")
    if isinstance(result, dict):
        message = result.get("exc_message")
        if isinstance(message, (list, tuple)) and message:
            return str(message[0])
        return str(message or "revoked")
    return str(result or "revoked")


class ResultBackend:
    """Keeps each task's meta ``{status, result, traceback, children,
    date_done, task_id}`` (DESIGN.md §3).  Subclasses are registered by URL
    scheme through ``corekit_register_result_backends`` and implement the
    three storage primitives `_get`, `_set_many` and `_delete` on encoded
    bytes; the encoding, the exception form and waiting live here.

    ``result_expires`` (seconds, from the app's configuration) is how long a
    result is kept; implementations drop expired results when they can.
    """

    scheme: ClassVar[str] = ""
    #: True for a backend that sends each result to its caller (``rpc://``):
    #: the worker then adds the task message's ``reply_to`` to every meta it
    #: passes to `store_many`, under the key ``"reply_to"``.  Other backends
    #: never see that key.
    needs_reply_to: ClassVar[bool] = False

    def __init__(self, url: str, codecs: Codecs, options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        self.codecs = codecs
        self.options = dict(options or {})
        self.serializer = self.options.get("result_serializer", "json")
        self.accept = codecs.accepted_types(self.options.get("result_accept_content", ["json"]))
        expires = self.options.get("result_expires", 86400)
        #: seconds (``result_expires`` may be a timedelta, as in Celery)
        self.expires = expires.total_seconds() if isinstance(expires, timedelta) else expires
        self.max_size = int(self.options.get("result_max_size") or RESULT_MAX_SIZE)
        #: modules a stored exception may name to be rebuilt with its own type
        self.exception_modules = frozenset(self.options.get("result_exception_modules") or ())

    @property
    def reply_to(self) -> str | None:
        """Where this client's results come back, or None (the default):
        `Corekit.send_task` sends it as the task message's ``reply_to``
        when the caller gave none and the task wants its result.  A backend
        that returns a queue name here sets up that queue on first use."""
        return None

    # -- storage primitives (subclasses) ----------------------------------
    def _get(self, task_id: str) -> bytes | None:
        raise NotImplementedError

    def _set_many(self, items: Sequence[tuple[str, bytes, str]]) -> None:
        """Store ``(task_id, encoded_meta, status)`` triples in one round trip."""
        raise NotImplementedError

    def _delete(self, task_id: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""

    def cleanup(self) -> int:
        """Delete expired results and counters; return how many.  Optional."""
        return 0

    # -- meta --------------------------------------------------------------
    def encode_meta(self, meta: Mapping[str, Any]) -> bytes:
        s = self.codecs.serializer(self.serializer)
        return s.content_type.encode() + b"\n" + s.dumps(dict(meta))

    def decode_meta(self, data: bytes) -> dict[str, Any]:
        ctype, _, body = data.partition(b"\n")
        return self.codecs.decode(body, ctype.decode(), None, self.accept)

    @staticmethod
    def make_meta(task_id: str, result: Any, state: str, traceback: str | None = None,
                  children: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
        if isinstance(result, BaseException):
            result = encode_exception(result)
        meta = {"status": state, "result": result, "traceback": traceback,
                "children": children or [], "task_id": task_id,
                "date_done": (datetime.now(timezone.utc).isoformat()
                              if state in states.READY_STATES else None)}
        meta.update(extra)
        return meta

    def store_result(self, task_id: str, result: Any, state: str,
                     traceback: str | None = None, **extra: Any) -> dict[str, Any]:
        meta = self.make_meta(task_id, result, state, traceback, **extra)
        self.store_many([meta])
        return meta

    def store_many(self, metas: Sequence[Mapping[str, Any]]) -> None:
        """Store several metas (the worker batches finished tasks).  Each is
        encoded on its own: one that cannot be (`encode_or_fail`) fails its
        task alone, so only an outage of the store makes this raise."""
        encode, limit = self.encode_meta, self.max_size
        items = []
        for meta in metas:
            try:
                data: bytes | None = encode(meta)
            except Exception:
                data = None
            if data is None or len(data) > limit:  # rare: this meta fails its task
                del data  # a result over the limit is not held twice
                encoded = self.encode_or_fail(meta, encode)
                if encoded is None:
                    continue
                meta, data = encoded
            items.append((meta["task_id"], data, meta["status"]))
        self._set_many(items)

    def encode_or_fail(self, meta: Mapping[str, Any],
                       encode: Callable[[Mapping[str, Any]], bytes]
                       ) -> tuple[Mapping[str, Any], bytes] | None:
        """``(meta, encode(meta))``; or, when *meta* cannot be encoded or is
        encoded larger than ``result_max_size``, its task's FAILURE meta
        with an ``EncodeError`` saying why (Celery stores that too), and
        that meta encoded; None (logged) if even that cannot be encoded."""
        try:
            data = encode(meta)
        except Exception as exc:
            why = self._cannot_encode(meta, exc)
        else:
            if len(data) <= self.max_size:
                return meta, data
            why = self._too_large(meta, len(data))
        logger.error("%s: the task is stored as FAILURE", why)
        failed = unencodable_meta(meta, why)
        try:
            return failed, encode(failed)
        except Exception:
            logger.exception("cannot store anything for task %r", meta.get("task_id"))
            return None

    def unstorable(self, meta: Mapping[str, Any]) -> str | None:
        """Why *meta* could not be stored (`encode_or_fail` would store its
        task's FAILURE instead), or None.  It encodes *meta*: the worker asks
        only for a task whose workflow goes on from its result."""
        try:
            size = len(self.encode_meta(meta))
        except Exception as exc:
            return self._cannot_encode(meta, exc)
        return self._too_large(meta, size) if size > self.max_size else None

    def _cannot_encode(self, meta: Mapping[str, Any], exc: Exception) -> str:
        return f"cannot encode the result of task {meta.get('task_id')} " \
               f"with {self.serializer}: {exc}"

    def _too_large(self, meta: Mapping[str, Any], size: int) -> str:
        return (f"the result of task {meta.get('task_id')} is {size} bytes encoded, "
                f"over result_max_size ({self.max_size} bytes)")

    def get_task_meta(self, task_id: str) -> dict[str, Any]:
        data = self._get(task_id)
        return pending_meta(task_id) if data is None else self.decode_meta(data)

    def get_many(self, task_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The metas of *task_ids*, in order (PENDING for unknown ones), in
        as few round trips as the backend allows (`_get_many`)."""
        return [pending_meta(task_id) if data is None else self.decode_meta(data)
                for task_id, data in zip(task_ids, self._get_many(task_ids))]

    def _get_many(self, task_ids: Sequence[str]) -> list[bytes | None]:
        """`_get` for several ids; override to make it one round trip."""
        return [self._get(task_id) for task_id in task_ids]

    def forget(self, task_id: str) -> None:
        self._delete(task_id)

    # -- groups ------------------------------------------------------------
    #: where a saved group is kept, apart from task ids
    GROUP_PREFIX: ClassVar[str] = "celery-taskset-meta-"

    def save_group(self, group_id: str, result: Any) -> None:
        """Keep a `GroupResult` (its members' ids) under *group_id*, as
        Celery does: ``{"result": result.as_tuple()}`` (a chord's join
        reads its header from here)."""
        meta = {"task_id": group_id, "status": states.SUCCESS, "result": result.as_tuple(),
                "date_done": datetime.now(timezone.utc).isoformat()}
        self._set_many([(self.GROUP_PREFIX + group_id, self.encode_meta(meta), "GROUP")])

    def restore_group(self, group_id: str, app: Any = None) -> Any:
        """The `GroupResult` saved under *group_id*, or None."""
        from corekit.result import result_from_tuple

        data = self._get(self.GROUP_PREFIX + group_id)
        if data is None:
            return None
        return result_from_tuple(self.decode_meta(data)["result"], app)

    def delete_group(self, group_id: str) -> None:
        self._delete(self.GROUP_PREFIX + group_id)

    def chord_size(self, group_id: str) -> int | None:
        """A chord's size kept by the client that sent it, when its body
        does not carry ``chord_size`` (recent Celery clients keep it in
        their result backend); None if unknown."""
        return None

    def wait_for(self, task_id: str, timeout: float | None = None, interval: float = 0.5
                 ) -> dict[str, Any]:
        """Block until the task is ready; `TimeoutError` after *timeout*.
        This default polls, starting fast and backing off to *interval*;
        backends that can be woken by the store override it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = min(0.005, interval)
        while True:
            meta = self.get_task_meta(task_id)
            if meta["status"] in states.READY_STATES:
                return meta
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CorekitTimeoutError(f"the operation timed out after {timeout}s "
                                              f"waiting for task {task_id}")
                time.sleep(min(delay, left))
            else:
                time.sleep(delay)
            delay = min(delay * 2, interval)

    # -- counters ----------------------------------------------------------
    def incr(self, key: str, amount: int = 1) -> int:
        """Add *amount* to the counter *key* (an absent or expired counter
        is 0) and return the new value, atomically: many threads and
        processes may incr one counter at the same time, and with positive
        amounts each of them sees a distinct value, so exactly one sees the
        total that a group or chord join waits for.

        A counter expires ``result_expires`` seconds after its last incr,
        as results do (never when that is None or 0); a backend that keeps
        results for the life of the process keeps its counters so too."""
        raise NotImplementedError(self._no_counters())

    def get_counter(self, key: str) -> int:
        """The counter's value; 0 when it is absent or expired."""
        raise NotImplementedError(self._no_counters())

    def delete_counter(self, key: str) -> None:
        """Drop the counter (a later incr starts again from 0); absent is fine."""
        raise NotImplementedError(self._no_counters())

    # -- revocations -------------------------------------------------------
    def add_revocations(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Keep revocations (``{"task_id"|"headers": ..., "terminate", "signal",
        "at"}``) for workers that start later, for ``revokes_expire`` seconds
        (the option, default three hours, as Celery keeps revokes)."""
        raise NotImplementedError(f"the {self.url.partition('://')[0]}:// result backend "
                                  f"keeps no revocations")

    def revocations(self, since: float) -> list[dict[str, Any]]:
        """The revocations added at or after the epoch time *since*, oldest first."""
        raise NotImplementedError(f"the {self.url.partition('://')[0]}:// result backend "
                                  f"keeps no revocations")

    def _no_counters(self) -> str:
        return f"the {self.url.partition('://')[0]}:// result backend keeps no counters"

    def describe(self) -> str:
        return mask_url(self.url)
