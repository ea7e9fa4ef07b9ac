"""`AsyncResult`: the handle a caller keeps on a sent task."""
from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any, Generic, Iterator, Sequence, TypeVar

from corekit import states
from corekit.result_backend import decode_exception
from corekit.exceptions import TaskRevokedError

if TYPE_CHECKING:
    from corekit.app import Corekit

R = TypeVar("R", covariant=True)


class AsyncResult(Generic[R]):
    """A task's state and result as the result backend knows them.

    A ready result's meta is cached; an unknown id is PENDING.
    """

    def __init__(self, id: str, app: Corekit | None = None, backend: Any = None,
                 parent: ResultBase | None = None) -> None:
        from corekit.app import current_app

        self.id = id
        self.app = app or current_app()
        self._backend = backend
        self._cache: dict[str, Any] | None = None
        #: the result of the task before this one in a chain
        self.parent = parent

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
            return self._exception(meta)
        return meta["result"]

    info = result

    @property
    def traceback(self) -> str | None:
        return self._meta().get("traceback")

    @property
    def date_done(self) -> str | None:
        return self._meta().get("date_done")

    @property
    def children(self) -> list[ResultBase]:
        """The results of the tasks this task sent while it ran (its chain's
        next task and its callbacks among them), once it is ready."""
        return [result_from_tuple(child, self.app) for child in
                self._meta().get("children") or []]

    def as_tuple(self) -> tuple[Any, Any]:
        """Celery's portable form: ``((id, parent), None)``."""
        return ((self.id, self.parent.as_tuple() if self.parent is not None else None), None)

    def iterdeps(self, intermediate: bool = False) -> Iterator[tuple[Any, ResultBase]]:
        """``(parent, node)`` over this result and its children's trees,
        breadth first; an unready node's children are not known yet: it
        raises `IncompleteStream` unless *intermediate*."""
        queue: deque[tuple[Any, ResultBase]] = deque([(None, self)])
        while queue:
            parent, node = queue.popleft()
            yield parent, node
            if node.ready():
                queue.extend((node, child) for child in node.children)
            elif not intermediate:
                raise IncompleteStream(f"{node!r} is not ready: its children are not known")

    def collect(self, intermediate: bool = False, **get: Any) -> Iterator[tuple[ResultBase, Any]]:
        """``(result, value)`` for this result and every result below it
        (the tasks it sent, theirs, and so on), waiting for each."""
        for _, node in self.iterdeps(intermediate=intermediate):
            yield node, node.get(**get)

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
        exc = self._exception(meta)
        if propagate:
            raise exc
        return exc

    def _exception(self, meta: dict[str, Any]) -> BaseException:
        if isinstance(meta["result"], BaseException):  # an EagerResult's own
            return meta["result"]
        if meta["status"] == states.REVOKED and not isinstance(meta.get("result"), dict):
            return TaskRevokedError(str(meta.get("result") or "revoked"))  # as stored before
        return decode_exception(meta["result"], self.backend.exception_modules)

    def revoke(self, terminate: bool = False, signal: str = "SIGTERM") -> None:
        """Never run this task; with *terminate*, kill it where it runs
        (see `corekit.control_client.Control.revoke`)."""
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


class IncompleteStream(Exception):
    """`collect` reached a result that is not ready."""


ResultBase = AsyncResult  # the common ground of results (Celery's name)


class ResultSet:
    """Several results, waited for together: ``join()`` lists their values
    in order."""

    def __init__(self, results: Sequence[Any], app: Corekit | None = None) -> None:
        from corekit.app import current_app

        self.results = list(results)
        self.app = app or (self.results[0].app if self.results
                           and getattr(self.results[0], "app", None) else current_app())
        self.parent: Any = None

    @property
    def backend(self) -> Any:
        return self.app.backend

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.results)

    def __getitem__(self, index: int) -> Any:
        return self.results[index]

    def add(self, result: Any) -> None:
        if result not in self.results:
            self.results.append(result)

    @property
    def children(self) -> list[Any]:
        return self.results

    def ready(self) -> bool:
        self._refresh()
        return all(r.ready() for r in self.results)

    def waiting(self) -> bool:
        return not self.ready()

    def successful(self) -> bool:
        self._refresh()
        return all(r.successful() for r in self.results)

    def failed(self) -> bool:
        self._refresh()
        return any(r.failed() for r in self.results)

    def completed_count(self) -> int:
        """How many of the tasks have succeeded."""
        self._refresh()
        return sum(1 for r in self.results if r.successful())

    @property
    def state(self) -> str:
        return states.SUCCESS if self.successful() else (
            states.FAILURE if self.failed() else states.PENDING)

    def join(self, timeout: float | None = None, propagate: bool = True,
             interval: float = 0.5) -> list[Any]:
        """The values of the results in order, once all are ready; a
        failure is raised (or, without *propagate*, put in its place);
        `corekit.exceptions.TimeoutError` after *timeout* seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        values = []
        for result in self.results:
            self._refresh()
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if isinstance(result, ResultSet):
                values.append(result.join(timeout=left, propagate=propagate, interval=interval))
            else:
                values.append(result.get(timeout=left, propagate=propagate, interval=interval))
        return values

    get = join

    def _refresh(self) -> None:
        """Read the states of all unready results in one backend call
        (``get_many``), so that waiting for N results is not N round trips."""
        pending = [r for r in self.results
                   if type(r) is AsyncResult and r._cache is None]
        if len(pending) < 2:
            return
        backend = pending[0].backend
        for result, meta in zip(pending, backend.get_many([r.id for r in pending])):
            if meta["status"] in states.READY_STATES:
                result._cache = meta

    def revoke(self, terminate: bool = False, signal: str = "SIGTERM") -> None:
        for result in self.results:
            result.revoke(terminate=terminate, signal=signal)

    def forget(self) -> None:
        for result in self.results:
            result.forget()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: [{', '.join(str(r.id) for r in self.results)}]>"


class GroupResult(ResultSet):
    """A group's results, under the group's id: ``save()`` keeps it in the
    result backend, ``GroupResult.restore(id)`` gets it back."""

    def __init__(self, id: str | None = None, results: Sequence[Any] | None = None,
                 parent: Any = None, app: Corekit | None = None) -> None:
        super().__init__(results or [], app=app)
        self.id = id
        self.parent = parent

    def save(self, backend: Any = None) -> None:
        (backend or self.backend).save_group(self.id, self)

    def delete(self, backend: Any = None) -> None:
        (backend or self.backend).delete_group(self.id)

    @classmethod
    def restore(cls, id: str, backend: Any = None, app: Corekit | None = None
                ) -> GroupResult | None:
        """The group saved under *id*, or None."""
        from corekit.app import current_app

        app = app or current_app()
        return (backend or app.backend).restore_group(id, app=app)

    def as_tuple(self) -> tuple[Any, Any]:
        return ((self.id, self.parent.as_tuple() if self.parent is not None else None),
                [r.as_tuple() for r in self.results])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GroupResult):
            return other.id == self.id and other.results == self.results
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<GroupResult: {self.id} [{', '.join(str(r.id) for r in self.results)}]>"


def result_from_tuple(value: Any, app: Corekit | None = None) -> Any:
    """A result from its `as_tuple` form (as stored in a meta's children)."""
    if isinstance(value, (AsyncResult, ResultSet)):
        return value
    node, members = value
    if isinstance(node, (list, tuple)):
        id, parent = node
    else:
        id, parent = node, None
    parent_result = result_from_tuple(parent, app) if parent else None
    if members is not None:
        return GroupResult(id, [result_from_tuple(m, app) for m in members],
                           parent=parent_result, app=app)
    return AsyncResult(id, app=app, parent=parent_result)


class EagerResult(AsyncResult[R]):
    """The result of a call run in this process (`Task.apply`)."""

    def __init__(self, id: str, value: Any, state: str, traceback: str | None = None,
                 children: list[Any] | None = None) -> None:
        self.id = id
        self._value = value
        self._state = state
        self._traceback = traceback
        self._children = children or []
        self._cache = None
        self._backend = None
        self.parent = None

    @property
    def children(self) -> list[Any]:
        return self._children

    def _meta(self) -> dict[str, Any]:
        return {"status": self._state, "result": self._value, "traceback": self._traceback,
                "children": [], "task_id": self.id, "date_done": None}

    def get(self, timeout: float | None = None, propagate: bool = True,
            interval: float = 0.5) -> R:
        return self._outcome(self._meta(), propagate)

    def forget(self) -> None:
        pass
