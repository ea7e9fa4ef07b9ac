"""A task class made from a function (``@app.task``), its options checked."""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable

from corekit.ratelimit import parse_rate
from corekit.task import Task

if TYPE_CHECKING:
    from corekit.app import Corekit


def make_task(app: Corekit, fn: Callable[..., Any], options: dict[str, Any]) -> Task[Any, Any]:
    """A `Task` running *fn* with *options* (``base``, ``name``, `Task`
    attributes), registered in *app*.  A name made from the function's
    module is remembered, so a module imported under two names warns."""
    options = dict(options)
    base = options.pop("base", Task)
    given = options.pop("name", None)
    name = given or app.gen_task_name(fn.__name__, fn.__module__)
    unknown = [key for key in options if not hasattr(base, key)]
    if unknown:
        raise TypeError(f"unknown task option(s) for {name}: {', '.join(sorted(unknown))}")
    parse_rate(options.get("rate_limit"))  # a bad rate fails here, not in the worker
    if options.get("autoretry_for") is not None:
        options["autoretry_for"] = tuple(options["autoretry_for"])
    if options.get("throws") is not None:
        options["throws"] = exception_classes(options["throws"], f"throws of {name}")
    bind = options.get("bind", base.bind)
    attrs = {"name": name, "app": app, "__module__": fn.__module__,
             "__doc__": fn.__doc__, "__wrapped__": fn,
             "run": fn if bind else staticmethod(fn), **options}
    task = type(fn.__name__, (base,), attrs)()
    functools.update_wrapper(task, fn, updated=())
    registry = app._registry
    registry.register(task)
    if not given:
        registry.note_origin(name, fn)
    return task


def exception_classes(value: Any, what: str) -> tuple[type[BaseException], ...]:
    """*value* (a class or a sequence of them) as a tuple of exception classes."""
    classes = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    for cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise TypeError(f"{what} must be exception classes, not {cls!r:.60}")
    return classes
