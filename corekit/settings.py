"""Declared settings: what a setting is called, its default, the values it
accepts and a one-line doc.

The kernel declares its own (`corekit.defaults`); a plugin declares its own
through the ``corekit_register_settings`` hook.  `declared_settings` merges
both, so ``app.conf`` can tell a typo from a plugin's setting and the
configuration reference is generated from one place.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping

from corekit.exceptions import ImproperlyConfigured
from corekit.frozen import Frozen

if TYPE_CHECKING:
    from corekit.pluginmanager import PluginManager

KERNEL = "corekit"


class Setting(Frozen):
    """One setting.

    ``type`` says what a value may be: a class or a tuple of classes, where
    `float` also accepts an `int`, `int` does not accept a `bool`, and
    `object` accepts anything.  None is accepted when the default is None
    or when *nullable* is set.  ``plugin`` is who declared it: ``"corekit"``
    for the kernel; the plugin manager's name for a plugin's (filled in by
    `declared_settings`, whatever the plugin wrote).  Immutable, compared by
    its fields (`corekit.frozen.Frozen`: a frozen dataclass without the
    import of ``dataclasses``).
    """

    __slots__ = FIELDS = ("name", "default", "type", "doc", "plugin", "nullable")
    name: str
    default: Any
    type: type | tuple[type, ...]
    doc: str
    plugin: str
    nullable: bool

    def __init__(self, name: str, default: Any, type: type | tuple[type, ...] = object,
                 doc: str = "", plugin: str = KERNEL, nullable: bool = False) -> None:
        self._store(name, default, type, doc, plugin, nullable)
        self._check()

    def _check(self) -> None:
        if not (isinstance(self.name, str) and self.name.isidentifier()
                and self.name == self.name.lower() and not self.name.startswith("_")):
            raise ImproperlyConfigured(
                f"setting name {self.name!r} must be a lowercase identifier such as "
                f"'worker_concurrency'")
        types = self.type if isinstance(self.type, tuple) else (self.type,)
        if not types or not all(isinstance(t, type) for t in types):
            raise ImproperlyConfigured(
                f"setting {self.name!r}: type must be a class or a tuple of classes, "
                f"not {self.type!r}")
        if "\n" in self.doc:
            raise ImproperlyConfigured(f"setting {self.name!r}: doc must be one line")
        problem = self.problem(self.default)
        if problem:
            raise ImproperlyConfigured(f"setting {self.name!r}: its default {problem}")

    @property
    def accepts_none(self) -> bool:
        return self.nullable or self.default is None

    @property
    def type_name(self) -> str:
        """What ``type`` accepts, in words: ``"int"``, ``"list or tuple or None"``."""
        types = self.type if isinstance(self.type, tuple) else (self.type,)
        if object in types:
            return "anything"
        names = [t.__name__ for t in types] + (["None"] if self.accepts_none else [])
        return " or ".join(names)

    def problem(self, value: Any) -> str | None:
        """None when *value* is acceptable, else what is wrong with it
        (``"must be int, not str ('4')"``)."""
        if value is None and self.accepts_none:
            return None
        types = self.type if isinstance(self.type, tuple) else (self.type,)
        if any(_is_instance(value, t) for t in types):
            return None
        return f"must be {self.type_name}, not {type(value).__name__} ({_short_repr(value)})"


def _is_instance(value: Any, cls: type) -> bool:
    if cls is object:
        return True
    if isinstance(value, bool) and cls is not bool:
        return False  # True is an int to Python, never a count or a number of seconds here
    if cls is float:
        return isinstance(value, (int, float))
    return isinstance(value, cls)


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def declared_settings(manager: PluginManager | None = None) -> dict[str, Setting]:
    """Every declared setting by name: the kernel's first (in `corekit.defaults`'
    order), then each installed plugin's, plugins sorted by name.

    A name declared twice (by two plugins, or by a plugin and the kernel) is
    an `ImproperlyConfigured` naming both.
    """
    from corekit.defaults import KERNEL_SETTINGS

    if manager is None:
        from corekit.pluginmanager import default_manager

        manager = default_manager()
    merged: dict[str, Setting] = {s.name: s for s in KERNEL_SETTINGS}
    for plugin, settings in sorted(_plugin_answers(manager), key=lambda answer: answer[0]):
        for setting in settings:
            if not isinstance(setting, Setting):
                raise ImproperlyConfigured(
                    f"plugin {plugin!r}: corekit_register_settings must return Setting "
                    f"objects (corekit.config.Setting), not {type(setting).__name__}")
            if setting.name in merged:
                raise ImproperlyConfigured(
                    f"setting {setting.name!r} is declared by both "
                    f"{_who(merged[setting.name].plugin)} and {_who(plugin)}")
            merged[setting.name] = setting.replace(plugin=plugin)
    return merged


def _plugin_answers(manager: PluginManager) -> Iterable[tuple[str, Iterable[Setting]]]:
    """``(plugin name, its settings)`` for each plugin implementing the hook."""
    for impl in manager.implementations("corekit_register_settings"):
        try:
            answer = impl.function()
        except Exception as exc:  # a broken third-party plugin must say who it is
            raise ImproperlyConfigured(f"plugin {impl.plugin_name!r}: corekit_register_settings "
                                       f"failed: {exc!r}") from exc
        yield impl.plugin_name, answer or ()


def _who(plugin: str) -> str:
    return "corekit" if plugin == KERNEL else f"plugin {plugin!r}"


def unknown_setting_message(key: str, known: Iterable[str],
                            celery_names: Mapping[str, Any] | frozenset[str] = frozenset()) -> str:
    """What to tell a user who set *key*, which no one declares: the closest
    declared name if there is one, or that Celery has it and corekit does not."""
    import difflib  # only when there is something to say

    close = difflib.get_close_matches(key.lower(), list(known), n=1, cutoff=0.8)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    if key in celery_names:
        return f"setting {key!r} is a Celery setting not used by corekit{hint}: it has no effect"
    return f"unknown setting {key!r}{hint}: no part of corekit or its plugins reads it"
