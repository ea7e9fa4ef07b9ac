"""``@shared_task``: a task for whichever app the project makes, as in Celery.

Reusable apps (a Django app's ``tasks.py``) cannot import the project's
app.  A shared task is made on every app that exists and on every app made
later, and the name it is bound to is a proxy for the task of the current
app (`corekit.current_app`: the most recently created one), so
``add.delay(2, 2)`` goes through the project's broker.
"""
from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.task import Task

__all__ = ["shared_task"]

_lock = threading.Lock()
#: every shared task's (function, options), in the order they were defined
_shared: list[tuple[Callable[..., Any], dict[str, Any]]] = []
_apps: weakref.WeakSet[Corekit] = weakref.WeakSet()


def shared_task(*args: Any, **options: Any) -> Any:
    """``@shared_task`` or ``@shared_task(**options)``: the options of
    ``@app.task`` (``bind``, ``name``, ``base``, ``max_retries``...)."""
    if len(args) == 1 and not options and callable(args[0]):
        return _share(args[0], {})
    if args:
        raise TypeError("shared_task takes options by keyword only: @shared_task(bind=True)")
    return lambda fn: _share(fn, options)


def _share(fn: Callable[..., Any], options: dict[str, Any]) -> TaskProxy:
    with _lock:
        _shared.append((fn, options))
        apps = list(_apps)
    for app in apps:
        app.task(**options)(fn)
    return TaskProxy(fn, options)


def register_shared_tasks(app: Corekit) -> None:
    """Make every shared task on *app*, a new app (and those made later)."""
    with _lock:
        _apps.add(app)
        shared = list(_shared)
    for fn, options in shared:
        app.task(**options)(fn)


class TaskProxy:
    """The current app's task made from one shared function."""

    __slots__ = ("__wrapped__", "_options", "__weakref__")

    def __init__(self, fn: Callable[..., Any], options: dict[str, Any]) -> None:
        object.__setattr__(self, "__wrapped__", fn)
        object.__setattr__(self, "_options", options)

    def _get_current_object(self) -> Task[Any, Any]:
        from corekit.app import current_app

        app = current_app()
        fn = self.__wrapped__
        name = self._options.get("name") or app.gen_task_name(fn.__name__, fn.__module__)
        tasks = app._registry  # not app.tasks: that would finalize the app
        task = tasks.get(name)
        if task is None or task.__wrapped__ is not fn:
            task = app.task(**self._options)(fn)
        return task

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._get_current_object(), attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        setattr(self._get_current_object(), attr, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._get_current_object()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<shared task {self.__wrapped__.__module__}.{self.__wrapped__.__qualname__}>"

    def __reduce__(self) -> Any:
        return (_current_task, (self._get_current_object().name,))


def _current_task(name: str) -> Task[Any, Any]:
    from corekit.app import current_app

    return current_app().tasks[name]
