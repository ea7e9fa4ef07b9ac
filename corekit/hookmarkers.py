"""The ``@hookspec`` and ``@hookimpl`` markers, without importing pluggy.

Every plugin module imports ``corekit.hookspecs.hookimpl`` at its top, and
plugin modules are imported at every app finalize and every ``corekit``
command, while pluggy itself (and the ``inspect`` it imports) is only needed
when a hook is dispatched (`corekit.pluginmanager.PluginManager.hook`).  A
marker only sets one attribute on the function, so these set exactly the
attribute pluggy's ``HookspecMarker`` / ``HookimplMarker`` set (the same
name, the same dict): pluggy recognizes what they mark, and a plugin that
marks its hooks with ``pluggy.HookimplMarker("corekit")`` works as well.
``tests/test_hookmarkers.py`` compares both markers option by option.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class HookspecMarker:
    """Marks a hook specification: sets ``<project>_spec`` to pluggy's
    ``HookspecOpts`` dict."""

    def __init__(self, project_name: str) -> None:
        self.project_name = project_name

    def __call__(self, function: F | None = None, firstresult: bool = False,
                 historic: bool = False, warn_on_impl: Warning | None = None,
                 warn_on_impl_args: dict[str, Warning] | None = None) -> Any:
        if historic and firstresult:
            raise ValueError("cannot have a historic firstresult hook")
        opts = {"firstresult": firstresult, "historic": historic,
                "warn_on_impl": warn_on_impl, "warn_on_impl_args": warn_on_impl_args}
        return _marking(function, self.project_name + "_spec", opts)


class HookimplMarker:
    """Marks a hook implementation: sets ``<project>_impl`` to pluggy's
    ``HookimplOpts`` dict (``@hookimpl`` or ``@hookimpl(tryfirst=True)``)."""

    def __init__(self, project_name: str) -> None:
        self.project_name = project_name

    def __call__(self, function: F | None = None, hookwrapper: bool = False,
                 optionalhook: bool = False, tryfirst: bool = False, trylast: bool = False,
                 specname: str | None = None, wrapper: bool = False) -> Any:
        opts = {"wrapper": wrapper, "hookwrapper": hookwrapper, "optionalhook": optionalhook,
                "tryfirst": tryfirst, "trylast": trylast, "specname": specname}
        return _marking(function, self.project_name + "_impl", opts)


def _marking(function: F | None, attribute: str, opts: dict[str, Any]) -> Any:
    """Mark *function* now, or return the decorator that will (each marked
    function gets its own copy of *opts*, as with pluggy)."""
    def mark(func: F) -> F:
        setattr(func, attribute, dict(opts))
        return func

    return mark if function is None else mark(function)
