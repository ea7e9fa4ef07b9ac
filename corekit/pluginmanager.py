"""Find plugins through the ``corekit.plugins`` entry-point group and turn
their hooks into plain registries, once."""
from __future__ import annotations

import functools
import importlib.metadata as md
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Iterable

import pluggy

from corekit import hookspecs
from corekit.exceptions import ImproperlyConfigured, PluginNotFound

ENTRY_POINT_GROUP = "corekit.plugins"
KIND_HOOKS = {
    "transports": "corekit_register_transports",
    "result_backends": "corekit_register_result_backends",
    "serializers": "corekit_register_serializers",
    "compressors": "corekit_register_compressors",
    "pools": "corekit_register_pools",
    "commands": "corekit_register_commands",
    "control_commands": "corekit_register_control_commands",
}


@dataclass
class PluginInfo:
    """One installed plugin: where it comes from and what it provides."""

    name: str
    module: str
    distribution: str
    version: str
    provides: dict[str, list[str]] = field(default_factory=dict)


def _names(kind: str, answer: Any) -> list[str]:
    if kind in ("serializers", "compressors"):
        return [codec.name for codec in answer]
    return list(answer)


class PluginManager:
    """Loads every installed plugin and exposes what they provide as dicts."""

    def __init__(self, entry_points: Iterable[md.EntryPoint] | None = None) -> None:
        self.pm = pluggy.PluginManager("corekit")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        eps = entry_points if entry_points is not None else md.entry_points(group=ENTRY_POINT_GROUP)
        for ep in eps:
            self._load(ep)

    def _load(self, ep: md.EntryPoint) -> None:
        try:
            module = ep.load()
        except Exception as exc:  # a broken third-party plugin must say who it is
            raise ImproperlyConfigured(
                f"plugin {ep.name!r} ({ep.value}) failed to import: {exc!r}") from exc
        dist = getattr(ep, "dist", None)
        info = PluginInfo(ep.name, ep.value, dist.name if dist else "?", dist.version if dist else "?")
        self.register(module, info)

    def register(self, module: ModuleType | object, info: PluginInfo) -> None:
        """Register a plugin object (normally done from its entry point)."""
        if info.name in self.plugins:
            return
        self.pm.register(module, name=info.name)
        for kind, hook in KIND_HOOKS.items():
            impl = getattr(module, hook, None)
            if impl is not None:
                info.provides[kind] = _names(kind, impl())
        self.plugins[info.name] = info
        self.__dict__.pop("_registries", None)

    def require(self, name: str) -> PluginInfo:
        """Return the plugin called *name* or fail saying what is installed."""
        try:
            return self.plugins[name]
        except KeyError:
            raise PluginNotFound(
                f"plugin {name!r} is not installed (installed: {', '.join(sorted(self.plugins))}); "
                f"install the package that provides it, which registers it under the "
                f"{ENTRY_POINT_GROUP!r} entry-point group") from None

    @property
    def hook(self) -> Any:
        return self.pm.hook

    @functools.cached_property
    def _registries(self) -> dict[str, dict[str, Any]]:
        registries: dict[str, dict[str, Any]] = {}
        for kind, hook_name in KIND_HOOKS.items():
            merged: dict[str, Any] = {}
            owner: dict[str, str] = {}
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                answer = impl.function()
                items = ({c.name: c for c in answer}.items()
                         if kind in ("serializers", "compressors") else dict(answer).items())
                for key, value in items:
                    if key in merged:
                        raise ImproperlyConfigured(
                            f"{kind[:-1]} {key!r} is provided by both plugin "
                            f"{owner[key]!r} and plugin {impl.plugin_name!r}")
                    merged[key], owner[key] = value, impl.plugin_name
            registries[kind] = merged
        return registries

    def registry(self, kind: str) -> dict[str, Any]:
        """``{name: factory}`` for one plugin kind, e.g. ``registry("transports")``."""
        return self._registries[kind]

    def get(self, kind: str, name: str) -> Any:
        """The factory called *name* of *kind*, or a clear `PluginNotFound`."""
        registry = self.registry(kind)
        try:
            return registry[name]
        except KeyError:
            known = ", ".join(sorted(registry)) or "none"
            raise PluginNotFound(
                f"no {kind[:-1].replace('_', ' ')} called {name!r} is installed "
                f"(installed: {known})") from None


@functools.lru_cache(maxsize=None)
def default_manager() -> PluginManager:
    """The process-wide manager over installed entry points."""
    return PluginManager()
