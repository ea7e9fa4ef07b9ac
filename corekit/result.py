"""`AsyncResult`: the handle a caller keeps on a sent task."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from corekit import states
from corekit.backend import decode_exception
from corekit.exceptions import TaskRevokedError

if TYPE_CHECKING:
    from corekit.app import Corekit

R = TypeVar("R", covariant=True)


class AsyncResult(Generic[R]):
    """A task's state and result as the result backend knows them.

    A ready result's meta is cached; an unknown id is PENDING.
    """

    def __init__(self, id: str, app: Corekit | None = None, backend: Any = None) -> None:
        from corekit.app import current_app

        self.id = id
        self.app = app or current_app()
        self._backend = backend
        self._cache: dict[str, Any] | None = None

    @property
    def backend(self) -> Any:
        return self._backend or self.app.backend

    @property
    def task_id(self) -> str:
        return self.id

    def _meta(self) -> dict[str, Any]:
        if self._cache is not None:
            return self._cache
        meta = self.backend.get_task_meta(self.id)
        if meta["status"] in states.READY_STATES:
            self._cache = meta
        return meta

    @property
    def state(self) -> str:
        return self._meta()["status"]

    status = state

    @property
    def result(self) -> Any:
        """The return value, or the exception instance if the task failed."""
        meta = self._meta()
        if meta["status"] in states.EXCEPTION_STATES:
            return decode_exception(meta["result"])
        return meta["result"]

    info = result

    @property
    def traceback(self) -> str | None:
        return self._meta().get("traceback")

    @property
    def date_done(self) -> str | None:
        return self._meta().get("date_done")

    @property
    def children(self) -> list[Any]:
        return self._meta().get("children") or []

    def ready(self) -> bool:
        return self.state in states.READY_STATES

    def successful(self) -> bool:
        return self.state == states.SUCCESS

    def failed(self) -> bool:
        return self.state == states.FAILURE

    def get(self, timeout: float | None = None, propagate: bool = True,
            interval: float = 0.5) -> R:
        """Wait for the task and return its value.

        A failed task's exception is re-raised (with its own type where that
        type can be imported) unless *propagate* is false, in which case it is
        returned; `corekit.exceptions.TimeoutError` after *timeout* seconds.
        """
        meta = self._cache or self.backend.wait_for(self.id, timeout=timeout, interval=interval)
        self._cache = meta
        return self._outcome(meta, propagate)

    wait = get

    def _outcome(self, meta: dict[str, Any], propagate: bool) -> Any:
        status = meta["status"]
        if status == states.SUCCESS:
            return meta["result"]
        exc = (TaskRevokedError(str(meta.get("result") or "revoked"))
               if status == states.REVOKED and not isinstance(meta.get("result"), dict)
               else decode_exception(meta["result"]))
        if propagate:
            raise exc
        return exc

    def revoke(self, terminate: bool = False, signal: str = "SIGTERM") -> None:
        """Never run this task; with *terminate*, kill it where it runs
        (see `corekit.control.Control.revoke`)."""
        self.app.control.revoke(self.id, terminate=terminate, signal=signal)

    def forget(self) -> None:
        """Remove the result from the backend."""
        self._cache = None
        self.backend.forget(self.id)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.id}>"

    def __str__(self) -> str:
        return self.id

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AsyncResult):
            return other.id == self.id
        if isinstance(other, str):
            return other == self.id
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)


class EagerResult(AsyncResult[R]):
    """The result of a call run in this process (`Task.apply`)."""

    def __init__(self, id: str, value: Any, state: str, traceback: str | None = None) -> None:
        self.id = id
        self._value = value
        self._state = state
        self._traceback = traceback
        self._cache = None
        self._backend = None

    def _meta(self) -> dict[str, Any]:
        return {"status": self._state, "result": self._value, "traceback": self._traceback,
                "children": [], "task_id": self.id, "date_done": None}

    def get(self, timeout: float | None = None, propagate: bool = True,
            interval: float = 0.5) -> R:
        return self._outcome(self._meta(), propagate)

    def forget(self) -> None:
        pass
