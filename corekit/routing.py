"""Where a task message goes: ``task_routes`` as Celery users write them.

``task_routes`` may be a dict (task name or glob pattern or compiled regex ->
route), a function ``(name, args, kwargs, options, task=None, **kw)``
returning a route or None, a dotted path to such a function, or a list of
any of these (the first router that answers wins).  A route is a dict
(``queue``, ``routing_key``, ``exchange``, ``priority``) or a queue name.

Precedence, as in Celery: options given to ``apply_async`` first, then the
task's own attributes (``queue=`` on ``@app.task``), then the routers, then
``task_default_queue``.
"""
from __future__ import annotations

import fnmatch
import importlib
import re
from typing import Any, Callable, Mapping, Sequence

Route = Mapping[str, Any]
RouterFn = Callable[..., Any]


def _as_route(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {"queue": value}
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"a route must be a queue name or a dict, not {type(value).__name__}")


class MapRoute:
    """A dict router: exact names first, then patterns in the dict's order."""

    def __init__(self, table: Mapping[Any, Any]) -> None:
        self.exact: dict[str, Any] = {}
        self.patterns: list[tuple[re.Pattern[str], Any]] = []
        for key, value in table.items():
            if isinstance(key, re.Pattern):
                self.patterns.append((key, value))
            elif any(ch in key for ch in "*?["):
                self.patterns.append((re.compile(fnmatch.translate(key)), value))
            else:
                self.exact[key] = value

    def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if name in self.exact:
            return self.exact[name]
        for pattern, value in self.patterns:
            if pattern.match(name):
                return value
        return None


def _router(spec: Any) -> RouterFn:
    if isinstance(spec, Mapping):
        return MapRoute(spec)
    if isinstance(spec, str):
        module, _, attr = spec.rpartition(".")
        try:
            return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
        except (ImportError, AttributeError, ValueError) as exc:
            raise ValueError(f"task_routes: cannot import router {spec!r}: {exc}") from None
    if callable(spec):
        return spec  # type: ignore[no-any-return]
    raise TypeError(f"task_routes entries must be dicts, functions or dotted paths, "
                    f"not {type(spec).__name__}")


class Router:
    """The app's routers, prepared once."""

    def __init__(self, routes: Any) -> None:
        if routes is None:
            specs: Sequence[Any] = ()
        elif isinstance(routes, (list, tuple)):
            specs = routes
        else:
            specs = (routes,)
        self.routers = [_router(spec) for spec in specs]

    def route(self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any],
              options: Mapping[str, Any], task: Any = None) -> dict[str, Any]:
        """The first router's answer for this call, or ``{}``."""
        for router in self.routers:
            answer = _as_route(router(name, args, kwargs, options, task=task))
            if answer:
                return answer
        return {}
