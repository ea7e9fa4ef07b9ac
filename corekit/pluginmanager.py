"""Find plugins through the ``corekit.plugins`` entry-point group and turn
their hooks into plain registries, lazily, because every ``corekit`` command
and every worker start pays for this.

* Making a manager costs nothing; the entry points are read once, on the
  first query, by `corekit.entrypoints` (the same answer as
  ``importlib.metadata.entry_points(group=...)``, without importing it).
* The first query (`registry`, `get`, `hook`, `plugins`, `require`) imports
  every plugin module.  Those are light by contract (DESIGN §2: hooks only;
  clients and implementations are imported inside the hook or named by
  reference), so this costs a few milliseconds: which plugin provides a name
  is only known by asking its hooks.
* A kind's hooks run on that kind's first query only.  In the reference
  kinds (transports, result backends, pools) a value may be a
  ``"package.module:attribute"`` string; it is imported the first time its
  name is looked up, so ``get("transports", "sqlite")`` never imports
  redis-py, kombu or eventlet.
* Distribution names and versions (package metadata, slow to parse) are read
  only when a `PluginInfo` is asked for them: by ``corekit plugins``.
* Collected hooks (kinds, settings, bootsteps, command line) are read from
  the plugin modules without pluggy (`implementations`, `corekit.hookimpls`);
  pluggy's manager is built on the first use of `hook`, to call a lifecycle
  hook, so app creation neither imports pluggy nor builds its hook tables.
"""
from __future__ import annotations

import functools
import importlib
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

from corekit.exceptions import ImproperlyConfigured, PluginNotFound
from corekit.hookimpls import HookImplementation, add_in_call_order, read_hookimpls

if TYPE_CHECKING:
    import importlib.metadata as md
    from types import ModuleType

    import pluggy

ENTRY_POINT_GROUP = "corekit.plugins"
KIND_HOOKS = {
    "transports": "corekit_register_transports",
    "result_backends": "corekit_register_result_backends",
    "serializers": "corekit_register_serializers",
    "compressors": "corekit_register_compressors",
    "pools": "corekit_register_pools",
    "commands": "corekit_register_commands",
    "control_commands": "corekit_register_control_commands",
    "early_patches": "corekit_register_early_patches",
    "schedule_stores": "corekit_register_schedule_stores",
}
#: Kinds whose hooks return a list of objects, each keyed by its ``name``.
LISTED_KINDS = frozenset({"serializers", "compressors"})
#: Kinds whose values may be ``"module:attribute"`` references, imported on first lookup.
REFERENCE_KINDS = frozenset({"transports", "result_backends", "pools", "schedule_stores"})
REGISTER_PREFIX = "corekit_register_"


def kind_noun(kind: str) -> str:
    """``"result_backends"`` -> ``"result backend"``, for messages."""
    return kind[:-2 if kind.endswith("ches") else -1].replace("_", " ")


class PluginInfo:
    """One installed plugin: where it comes from and what it provides.

    ``distribution`` and ``version`` come from the package metadata, read on
    first access only; ``provides`` asks the plugin's ``corekit_register_*``
    hooks on first access (references stay unimported)."""

    def __init__(self, name: str, module: str, distribution: str | None = None,
                 version: str | None = None, *, entry_point: md.EntryPoint | None = None) -> None:
        self.name, self.module = name, module
        self._distribution, self._version = distribution, version
        self._entry_point = entry_point
        self._plugin: object | None = None
        self._hookimpls: list[HookImplementation] = []
        self._provides: dict[str, list[str]] | None = None

    def __repr__(self) -> str:
        return f"<PluginInfo {self.name} ({self.module})>"

    @property
    def distribution(self) -> str:
        if self._distribution is None:
            self._read_metadata()
        return self._distribution or "?"

    @property
    def version(self) -> str:
        if self._version is None:
            self._read_metadata()
        return self._version or "?"

    def _read_metadata(self) -> None:
        dist = getattr(self._entry_point, "dist", None)
        self._distribution, self._version = _name_and_version(dist) if dist else ("?", "?")

    @property
    def provides(self) -> dict[str, list[str]]:
        """``{kind: [names]}`` for every ``corekit_register_*`` hook it implements."""
        if self._provides is None:
            self._provides = {}
            for impl in self._hookimpls:
                if impl.hook_name.startswith(REGISTER_PREFIX):
                    answer = impl.function()
                    self._provides[impl.hook_name[len(REGISTER_PREFIX):]] = _names(answer)
        return self._provides

    @property
    def status(self) -> str | None:
        """What the plugin says of itself in its module's ``COREKIT_STATUS``
        (an optional integration: whether it is active, and if not, why)."""
        status = getattr(self._plugin, "COREKIT_STATUS", None)
        return status if isinstance(status, str) else None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "module": self.module, "distribution": self.distribution,
                "version": self.version, "provides": self.provides, "status": self.status}


def _name_and_version(dist: Any) -> tuple[str, str]:
    """One metadata parse per distribution (``dist.name`` and ``dist.version``
    each parse it again)."""
    key = str(getattr(dist, "_path", id(dist)))
    if key not in _METADATA:
        meta = dist.metadata
        _METADATA[key] = (meta["Name"] or "?", meta["Version"] or "?")
    return _METADATA[key]


_METADATA: dict[str, tuple[str, str]] = {}


def _names(answer: Any) -> list[str]:
    if isinstance(answer, Mapping):
        return list(answer)
    return [str(getattr(item, "name", None) or getattr(item, "__name__", item))
            for item in answer or ()]


def _early_patch_of(info: PluginInfo, pool: str) -> Callable[[], None] | None:
    for impl in info._hookimpls:
        if impl.hook_name == KIND_HOOKS["early_patches"]:
            patch = (impl.function() or {}).get(pool)
            if patch is not None:
                return patch  # type: ignore[no-any-return]
    return None


def _resolve(reference: str, what: str, plugin: str) -> Any:
    module, _, attr = reference.partition(":")
    try:
        return functools.reduce(getattr, attr.split("."), importlib.import_module(module))
    except Exception as exc:  # a broken plugin must say who it is
        raise ImproperlyConfigured(f"{what} of plugin {plugin!r} ({reference}) failed to "
                                   f"import: {exc!r}") from exc


class Registry(Mapping[str, Any]):
    """One kind's merged ``{name: object}``.  A reference value is imported
    the first time its name is looked up (iterating names imports nothing)."""

    def __init__(self, kind: str, entries: dict[str, Any], owners: dict[str, str]) -> None:
        self.kind, self._entries, self._owners = kind, entries, owners

    def __getitem__(self, name: str) -> Any:
        value = self._entries[name]
        if isinstance(value, str) and self.kind in REFERENCE_KINDS:
            what = f"{kind_noun(self.kind)} {name!r}"
            value = self._entries[name] = _resolve(value, what, self._owners[name])
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def owner(self, name: str) -> str:
        """The plugin that provides *name*."""
        return self._owners[name]


class PluginManager:
    """Installed plugins, imported on first query, and what they provide as
    mappings (see the module docstring for what is lazy)."""

    def __init__(self, entry_points: Iterable[md.EntryPoint] | None = None) -> None:
        self._pluggy: pluggy.PluginManager | None = None
        self._entry_points = None if entry_points is None else list(entry_points)
        self._infos: dict[str, PluginInfo] = {}
        self._loaded = False
        self._registries: dict[str, Registry] = {}
        #: whether `connect_signal_receivers` ran (a plain flag: read per task sent)
        self.signal_receivers_connected = False

    # -- loading ---------------------------------------------------------------
    def _read_entry_points(self) -> list[md.EntryPoint]:
        if self._entry_points is None:
            from corekit.entrypoints import entry_points

            self._entry_points = entry_points(ENTRY_POINT_GROUP)
        return self._entry_points

    def _load_all(self) -> None:
        if self._loaded:
            return
        for ep in self._read_entry_points():
            if ep.name not in self._infos:
                self._load(ep)
        self._loaded = True  # only once all loaded: a broken plugin fails every query

    def early_patch(self, pool: str) -> Callable[[], None] | None:
        """The patch a plugin declares for *pool* (``corekit_register_early_patches``),
        or None.  Plugin modules are imported one at a time, the one whose
        entry-point name is *pool* first, and the search stops at the first
        patch found: as little as possible is imported before patching."""
        entry_points = sorted(self._read_entry_points(), key=lambda ep: ep.name != pool)
        for info in list(self._infos.values()):
            patch = _early_patch_of(info, pool)
            if patch is not None:
                return patch
        for ep in entry_points:
            if ep.name in self._infos:
                continue
            self._load(ep)
            patch = _early_patch_of(self._infos[ep.name], pool)
            if patch is not None:
                return patch
        return None

    def _load(self, ep: md.EntryPoint) -> None:
        try:
            module = ep.load()
        except Exception as exc:  # a broken third-party plugin must say who it is
            raise ImproperlyConfigured(
                f"plugin {ep.name!r} ({ep.value}) failed to import: {exc!r}") from exc
        self.register(module, PluginInfo(ep.name, ep.value, entry_point=ep))

    def register(self, module: ModuleType | object, info: PluginInfo) -> None:
        """Register a plugin object (normally done from its entry point; tests
        register objects directly).  A name already registered is ignored; a
        hook implementation pluggy would refuse is an `ImproperlyConfigured`."""
        if info.name in self._infos:
            return
        info._hookimpls = read_hookimpls(module, info.name)
        if self._pluggy is not None:
            self._pluggy.register(module, name=info.name)
        info._plugin = module
        self._infos[info.name] = info
        self._registries.clear()

    # -- queries ---------------------------------------------------------------
    @property
    def plugins(self) -> dict[str, PluginInfo]:
        """``{name: PluginInfo}`` of every installed (and registered) plugin."""
        self._load_all()
        return self._infos

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
        """pluggy's hook relay, every plugin registered: how lifecycle hooks
        are called (``manager.hook.corekit_worker_ready(worker=w)``).  pluggy
        is imported and its manager built on first use."""
        self._load_all()
        return self.pm.hook

    @property
    def pm(self) -> pluggy.PluginManager:
        """pluggy's manager of the registered plugins, built on first use."""
        if self._pluggy is None:
            import pluggy

            from corekit import hookspecs

            manager = pluggy.PluginManager("corekit")
            manager.add_hookspecs(hookspecs)
            for info in self._infos.values():
                manager.register(info._plugin, name=info.name)
            self._pluggy = manager
        return self._pluggy

    def implementations(self, hook_name: str) -> list[HookImplementation]:
        """Every plugin's implementation of *hook_name*, in pluggy's order
        (``get_hookimpls()``: the call order reversed), without pluggy: how
        collected hooks (kinds, settings, bootsteps, command line) are read."""
        self._load_all()
        impls: list[HookImplementation] = []
        for info in self._infos.values():
            for impl in info._hookimpls:
                if impl.hook_name == hook_name:
                    add_in_call_order(impls, impl)
        return impls

    def connect_signal_receivers(self) -> None:
        """Connect the receivers of every plugin's
        ``corekit_register_signal_receivers`` to `corekit.signals`, once
        (each receiver once per process, whichever manager asks): when a
        process first prepares a task, sets a worker up or runs a task
        eagerly.  Callers check `signal_receivers_connected` first."""
        with _CONNECT_LOCK:
            if self.signal_receivers_connected:
                return
            from corekit import signals

            for impl in self.implementations("corekit_register_signal_receivers"):
                for name, receiver in (impl.function() or {}).items():
                    signal = getattr(signals, name, None)
                    if not isinstance(signal, signals.Signal):
                        raise ImproperlyConfigured(
                            f"plugin {impl.plugin_name!r} connects a receiver to {name!r}, "
                            f"which is not a corekit signal (see corekit.signals.__all__)")
                    if isinstance(receiver, str):
                        receiver = _resolve(receiver, f"{name} receiver", impl.plugin_name)
                    if (name, receiver) not in _CONNECTED:
                        signal.connect(receiver, weak=False)
                        _CONNECTED.add((name, receiver))
            self.signal_receivers_connected = True

    def implements(self, hook_name: str) -> bool:
        """Whether any plugin implements *hook_name*: a lifecycle hook no one
        implements is not called, so pluggy is not built for it."""
        return bool(self.implementations(hook_name))

    def registry(self, kind: str) -> Registry:
        """``{name: factory}`` for one plugin kind, e.g. ``registry("transports")``."""
        self._load_all()
        if kind not in self._registries:
            self._registries[kind] = self._merge(kind)
        return self._registries[kind]

    def _merge(self, kind: str) -> Registry:
        try:
            hook_name = KIND_HOOKS[kind]
        except KeyError:
            raise ValueError(f"unknown plugin kind {kind!r} (known: "
                             f"{', '.join(sorted(KIND_HOOKS))})") from None
        merged: dict[str, Any] = {}
        owner: dict[str, str] = {}
        for impl in self.implementations(hook_name):
            answer = impl.function() or {}
            items = ({c.name: c for c in answer}.items() if kind in LISTED_KINDS
                     else dict(answer).items())
            for key, value in items:
                if key in merged:
                    raise ImproperlyConfigured(
                        f"{kind_noun(kind)} {key!r} is provided by both plugin "
                        f"{owner[key]!r} and plugin {impl.plugin_name!r}")
                merged[key], owner[key] = value, impl.plugin_name
        return Registry(kind, merged, owner)

    def get(self, kind: str, name: str) -> Any:
        """The factory called *name* of *kind*, or a clear `PluginNotFound`."""
        registry = self.registry(kind)
        try:
            return registry[name]
        except KeyError:
            known = ", ".join(sorted(registry)) or "none"
            raise PluginNotFound(
                f"no {kind_noun(kind)} called {name!r} is installed "
                f"(installed: {known})") from None


#: ``(signal name, receiver)`` connected in this process, by any manager
_CONNECTED: set[tuple[str, Any]] = set()
_CONNECT_LOCK = threading.Lock()


@functools.lru_cache(maxsize=None)
def default_manager() -> PluginManager:
    """The process-wide manager over installed entry points."""
    return PluginManager()
