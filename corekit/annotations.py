"""``task_annotations``: task attributes set from the configuration.

The setting is what Celery takes: a dict ``{task_name: {attr: value}}``
(``"*"`` for every task), an object with an ``annotate(task)`` method
returning a dict of attributes or None (and optionally ``annotate_any()``
for every task), a string naming such a class (``"proj.annotations.Slow"``
or ``"proj.annotations:Slow"``, instantiated without arguments), or a list
of any of these.

For each task, the first entry of the list whose ``annotate`` answers is
applied, then the first whose ``annotate_any`` (a dict's ``"*"``) answers:
so where both set an attribute, ``"*"`` wins, as in Celery.  A value
becomes a class attribute of the task (a function becomes a method, e.g.
``on_failure``); a key ``"@name"`` wraps the method *name*: the value is
called with the current method and returns the new one.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable, Sequence

from corekit.exceptions import ImproperlyConfigured
from corekit.ratelimit import parse_rate

if TYPE_CHECKING:
    from corekit.task import Task


class MapAnnotation(dict):  # type: ignore[type-arg]
    """A dict entry of ``task_annotations``: task name (or ``"*"``) ->
    attributes."""

    def annotate(self, task: Task[Any, Any]) -> dict[str, Any] | None:
        found = self.get(task.name)
        return dict(found) if found is not None else None

    def annotate_any(self) -> dict[str, Any] | None:
        found = self.get("*")
        return dict(found) if found is not None else None


def prepare(setting: Any) -> list[Any]:
    """The setting as a list of objects with ``annotate``/``annotate_any``."""
    if setting is None:
        return []
    entries = setting if isinstance(setting, (list, tuple)) else [setting]
    return [_expand(entry) for entry in entries]


def _expand(entry: Any) -> Any:
    if isinstance(entry, dict):
        for name, attrs in entry.items():
            if not isinstance(attrs, dict):
                raise ImproperlyConfigured(
                    f"task_annotations: the entry for {name!r} must be a dict of task "
                    f"attributes, not {attrs!r:.60}")
            for key, value in attrs.items():
                _checked(name, key, value)
        return MapAnnotation(entry)
    if isinstance(entry, str):
        return _instantiate(entry)
    if not (hasattr(entry, "annotate") or hasattr(entry, "annotate_any")):
        raise ImproperlyConfigured(
            f"task_annotations: {entry!r:.60} is neither a dict, a class name, nor an "
            f"object with an annotate(task) method")
    return entry


def _instantiate(path: str) -> Any:
    module, sep, attr = path.partition(":")
    if not sep:
        module, _, attr = path.rpartition(".")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj()
    except Exception as exc:
        raise ImproperlyConfigured(f"task_annotations: cannot make an annotation of "
                                   f"{path!r}: {exc!r}") from exc


def _first(entries: Sequence[Any], method: str, *args: Any) -> dict[str, Any] | None:
    for entry in entries:
        answer = getattr(entry, method, None)
        if answer is None:
            continue
        found = answer(*args)
        if found is not None:
            return found  # type: ignore[no-any-return]
    return None


def annotate(task: Task[Any, Any], entries: Sequence[Any]) -> None:
    """Apply *entries* (from `prepare`) to *task*'s class, once."""
    cls = type(task)
    if cls.__dict__.get("_annotated"):
        return
    setattr(cls, "_annotated", True)
    for attrs in (_first(entries, "annotate", task), _first(entries, "annotate_any")):
        for key, value in (attrs or {}).items():
            if key.startswith("@"):
                _wrap(cls, key[1:], value)
            else:
                setattr(cls, key, _checked(task.name, key, value))
    cls._has_handlers = None  # `Task.has_handlers` looks again (handlers may be new)


def _wrap(cls: type, name: str, around: Callable[[Any], Any]) -> None:
    current = getattr(cls, name)
    setattr(cls, name, around(current))


def _checked(task: str, key: str, value: Any) -> Any:
    """*value* as the attribute *key* takes it; ImproperlyConfigured for
    a rate limit that does not parse (it would fail in the worker)."""
    if key == "rate_limit":
        try:
            parse_rate(value)
        except Exception as exc:
            raise ImproperlyConfigured(
                f"task_annotations: rate_limit {value!r} for {task}: {exc}") from exc
    if key in ("autoretry_for", "dont_autoretry_for", "throws") and isinstance(value, list):
        return tuple(value)
    return value
