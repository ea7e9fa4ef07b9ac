"""`xmap`, `xstarmap` (one task message running a task on each item) and
`chunks` (the items split into starmap tasks, sent as a group)."""
from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from corekit.canvas.group import group
from corekit.canvas.signature import Signature, maybe_signature

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.messages import Message


class xmap(Signature):  # noqa: N801 - Celery's name
    """``task.map(items)``: one task message calling ``task(item)`` for each
    item, in the worker, returning the list (``sig()`` runs them here, as
    Celery does; ``delay()``/``apply_async()`` send them)."""

    TYPE = "xmap"
    BUILTIN = "celery.map"

    def __init__(self, task: Any = None, it: Iterable[Any] = (), app: Corekit | None = None,
                 **options: Any) -> None:
        if isinstance(task, dict) and not isinstance(task, Signature) and "kwargs" in task \
                and "task" in task.get("kwargs", {}):
            super().__init__(task, app=app)
            return
        sig = maybe_signature(task, app)
        assert sig is not None
        super().__init__(self.BUILTIN, (), {"task": sig, "it": [_listed(i) for i in it]},
                         options, immutable=True, app=app or sig._app)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], app: Corekit | None = None) -> Signature:
        return cls(dict(data), app=app)

    def __repr__(self) -> str:
        task, it = self.kwargs["task"], self.kwargs["it"]
        name = task["task"] if isinstance(task, dict) else task
        return f"[{name}(x) for x in {it!r}]"


class xstarmap(xmap):  # noqa: N801 - Celery's name
    """``task.starmap(items)``: ``task(*item)`` for each item."""

    TYPE = "xstarmap"
    BUILTIN = "celery.starmap"

    def __repr__(self) -> str:
        task, it = self.kwargs["task"], self.kwargs["it"]
        name = task["task"] if isinstance(task, dict) else task
        return f"[{name}(*x) for x in {it!r}]"


def _listed(item: Any) -> Any:
    return list(item) if isinstance(item, tuple) else item


class chunks(Signature):  # noqa: N801 - Celery's name
    """``task.chunks(items, n)``: the items split into parts of *n*, each
    part one ``starmap`` task; calling it sends them as a group."""

    TYPE = "chunks"

    def __init__(self, task: Any = None, it: Iterable[Any] = (), n: int = 1,
                 app: Corekit | None = None, **options: Any) -> None:
        if isinstance(task, dict) and not isinstance(task, Signature) and "kwargs" in task \
                and "n" in task.get("kwargs", {}):
            super().__init__(task, app=app)
            return
        if n < 1:
            raise ValueError(f"chunks need a size of at least 1, not {n}")
        sig = maybe_signature(task, app)
        assert sig is not None
        super().__init__("celery.chunks", (), {"task": sig, "it": [_listed(i) for i in it],
                                               "n": int(n)}, options, immutable=True,
                         app=app or sig._app)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], app: Corekit | None = None) -> Signature:
        return cls(dict(data), app=app)

    def __call__(self, **options: Any) -> Any:
        return self.apply_async((), {}, **options)

    def group(self) -> group:
        """The chunks as a group of ``starmap`` tasks."""
        task = maybe_signature(self.kwargs["task"], self._app)
        items = iter(self.kwargs["it"])
        n = self.kwargs["n"]
        parts = iter(lambda: list(itertools.islice(items, n)), [])
        return group((xstarmap(task, part, app=self._app) for part in parts), app=self._app)

    def prepare(self, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None,
                options: Mapping[str, Any]) -> tuple[list[Message], Any]:
        return self.group().prepare(args, kwargs, {**self.options, **options})

    def apply(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              **options: Any) -> Any:
        return self.group().apply(args, kwargs, **options)

    def __repr__(self) -> str:
        task = self.kwargs["task"]
        name = task["task"] if isinstance(task, dict) else task
        return f"{name}.chunks({self.kwargs['it']!r}, {self.kwargs['n']})"
