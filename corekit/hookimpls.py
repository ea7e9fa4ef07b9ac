"""Read a plugin's hook implementations as pluggy would, without pluggy.

Most hooks are not dispatched at all: the plugin-kind, settings, bootstep
and command-line hooks are *collected* (each plugin's answer is asked for
and merged by `corekit.pluginmanager.PluginManager`), and they are collected
at every app finalize and every ``corekit`` command.  Building pluggy's hook
tables for that costs more than the collecting (pluggy imports ``inspect``
and reads each function's signature), so the manager reads what pluggy's
``register`` reads (routines carrying the ``corekit_impl`` marker, under
their name or ``specname``), checks what pluggy checks there (the arguments
an implementation needs are ones the hook passes), and lists them in
pluggy's call order.  pluggy is created only for hooks that are called
(`corekit.pluginmanager.PluginManager.hook`).
"""
from __future__ import annotations

import types
from typing import Any, Callable

from corekit import hookspecs
from corekit.exceptions import ImproperlyConfigured

IMPL_ATTRIBUTE = "corekit_impl"
SPEC_ATTRIBUTE = "corekit_spec"
#: What ``inspect.isroutine`` (pluggy's test) accepts, without importing inspect.
ROUTINES = (types.FunctionType, types.MethodType, types.BuiltinFunctionType,
            types.MethodDescriptorType, types.WrapperDescriptorType,
            types.MethodWrapperType, types.ClassMethodDescriptorType)


class HookImplementation:
    """One plugin's implementation of one hook; ``plugin_name`` and
    ``function`` as in pluggy's ``HookImpl``, which the collectors used."""

    __slots__ = ("plugin", "plugin_name", "hook_name", "function", "opts")

    def __init__(self, plugin: object, plugin_name: str, hook_name: str,
                 function: Callable[..., Any], opts: dict[str, Any]) -> None:
        self.plugin, self.plugin_name, self.hook_name = plugin, plugin_name, hook_name
        self.function, self.opts = function, opts

    def __repr__(self) -> str:
        return f"<HookImplementation {self.hook_name} of plugin {self.plugin_name!r}>"

    @property
    def is_wrapper(self) -> bool:
        return bool(self.opts.get("wrapper") or self.opts.get("hookwrapper"))


def read_hookimpls(plugin: object, plugin_name: str) -> list[HookImplementation]:
    """Every marked hook implementation of *plugin* (a module or an object),
    in ``dir()`` order as pluggy registers them.  An implementation that
    needs an argument its hook does not pass is an `ImproperlyConfigured`
    naming the plugin, as pluggy's registration refuses it."""
    found = []
    for attribute in dir(plugin):
        function = getattr(plugin, attribute, None)
        opts = getattr(function, IMPL_ATTRIBUTE, None) if isinstance(function, ROUTINES) else None
        if isinstance(opts, dict):
            hook_name = opts.get("specname") or attribute
            _check_arguments(plugin_name, hook_name, function)
            found.append(HookImplementation(plugin, plugin_name, hook_name, function, opts))
    return found


def _check_arguments(plugin_name: str, hook_name: str, function: Any) -> None:
    spec = getattr(hookspecs, hook_name, None)
    if getattr(spec, SPEC_ATTRIBUTE, None) is None:
        return  # not a corekit hook: pluggy does not refuse it at registration either
    passed = _required_arguments(spec)
    unknown = [name for name in _required_arguments(function) if name not in passed]
    if unknown:
        raise ImproperlyConfigured(
            f"plugin {plugin_name!r}: its {hook_name} takes {', '.join(unknown)}, which the "
            f"hook does not pass (it passes {', '.join(passed) or 'no argument'}; "
            f"see corekit.hookspecs)")


def _required_arguments(function: Any) -> tuple[str, ...]:
    """Positional parameters without a default, ``self`` left out: pluggy's
    ``varnames(function)[0]``, read from the code object."""
    bound = isinstance(function, types.MethodType)
    function = function.__func__ if bound else function
    code = getattr(function, "__code__", None)
    if code is None:
        return ()  # a builtin: pluggy cannot read its signature either
    names = code.co_varnames[:code.co_argcount]
    names = names[:len(names) - len(function.__defaults__ or ())]
    qualname = getattr(function, "__qualname__", "")
    if names and (bound or ("." in qualname and names[0] == "self")):
        names = names[1:]
    return tuple(names)


def add_in_call_order(impls: list[HookImplementation], impl: HookImplementation) -> None:
    """Insert *impl* where pluggy's ``HookCaller._add_hookimpl`` puts it:
    plain implementations first (``trylast`` ones at the front, ``tryfirst``
    ones at the back, the others in registration order between), wrappers
    after them in the same way.  pluggy calls the list from its end."""
    split = next((i for i, known in enumerate(impls) if known.is_wrapper), len(impls))
    start, end = (split, len(impls)) if impl.is_wrapper else (0, split)
    if impl.opts.get("trylast"):
        impls.insert(start, impl)
    elif impl.opts.get("tryfirst"):
        impls.insert(end, impl)
    else:
        i = end - 1
        while i >= start and impls[i].opts.get("tryfirst"):
            i -= 1
        impls.insert(i + 1, impl)
