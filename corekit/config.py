"""The app's configuration (``app.conf``): declared settings, updates,
environment overrides and `config_from_object`.

Which settings exist is declared, not hard-coded here: the kernel's in
`corekit.defaults`, each plugin's through ``corekit_register_settings``
(`corekit.settings`).  A key no one declares warns once (a typo such as
``task_serialiser`` names the setting it is close to); a value of the wrong
type is an `ImproperlyConfigured` when the app finalizes.
"""
from __future__ import annotations

import copy
import importlib
import os
import sys
import types
import warnings
from typing import Any, Callable, Iterator, Mapping, MutableMapping

from corekit.defaults import DEFAULTS, KERNEL_SETTINGS
from corekit.exceptions import ImproperlyConfigured, UnknownSettingWarning
from corekit.settings import Setting, declared_settings, unknown_setting_message

__all__ = ["DEFAULTS", "DEFAULT_URL", "ENV_OVERRIDES", "Setting", "Settings",
           "UnknownSettingWarning", "declared_settings"]

#: The two environment variables every deployment sets (any setting has
#: one: ``COREKIT_<NAME>``, `corekit.config_sources`).
ENV_OVERRIDES = {
    "COREKIT_BROKER_URL": "broker_url",
    "COREKIT_RESULT_BACKEND": "result_backend",
}

DEFAULT_URL = "sqlite://"

_KERNEL = {setting.name: setting for setting in KERNEL_SETTINGS}
#: frames a warning skips (corekit's own and the MutableMapping methods
#: Settings inherits), to point at the user's line that set the key or
#: finalized the app
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_MAPPING_FILE = MutableMapping.update.__code__.co_filename

Declarations = Callable[[], Mapping[str, Setting]]


class Settings(MutableMapping[str, Any]):
    """``app.conf``: a mapping with attribute access (``conf.task_serializer``).

    Lookup order: environment override, value set by the user, declared
    default.  It knows the kernel's settings from the start and every
    plugin's once it needs them (the first read of a name the kernel does
    not declare, iterating, or the app finalizing), through *declarations*
    (`corekit.settings.declared_settings` for the app's plugin manager).
    Reading a name no one declares raises KeyError (AttributeError as an
    attribute), naming it.
    """

    def __init__(self, **changes: Any) -> None:
        object.__setattr__(self, "_changes", {})
        object.__setattr__(self, "version", 0)  # counts changes: caches key on it
        object.__setattr__(self, "_declared", _KERNEL)
        object.__setattr__(self, "_declarations", None)
        object.__setattr__(self, "_checked", False)  # set by `check`: later sets check at once
        object.__setattr__(self, "_warned", set())
        #: the defaults read so far, mutable ones copied for this app (a list
        #: appended to through one app must not change every app's default)
        object.__setattr__(self, "_own_defaults", {})
        #: where each key the kernel does not declare was first set, for a
        #: warning at finalize to point at that line
        object.__setattr__(self, "_set_at", {})
        #: what flags, the environment and the config file say, typed, which
        #: the code cannot change (`pin`, `read_sources`), and where each came from
        object.__setattr__(self, "_pinned", {})
        object.__setattr__(self, "_origins", {})
        #: environment variables not yet typed: their setting is a plugin's
        object.__setattr__(self, "_env_untyped", {})
        object.__setattr__(self, "_results_for", None)
        self.update(changes)

    # -- what is declared ------------------------------------------------------
    def use_declarations(self, declarations: Declarations) -> None:
        """Learn plugins' settings from *declarations* when they are needed."""
        object.__setattr__(self, "_declarations", declarations)

    def declared(self) -> Mapping[str, Setting]:
        """Every declared setting (the kernel's and, once loaded, the plugins')."""
        if self._declarations is not None and self._declared is _KERNEL:
            self._load_declarations()
        return self._declared

    def _load_declarations(self) -> None:
        if self._declarations is not None:
            object.__setattr__(self, "_declared", dict(self._declarations()))
        self._type_env()

    # -- what the deployment says: flags > environment > config file > code -----
    def read_sources(self, environ: Mapping[str, str] | None = None,
                     file: Any = None) -> None:
        """Pin what the config file (`corekit.config_sources.config_file`)
        and the ``COREKIT_<SETTING>`` variables of *environ* (default
        ``os.environ``) say, the environment over the file."""
        from corekit.config_sources import config_file, env_settings

        file = config_file() if file is None else file
        for key, value in file.settings.items():
            self._pin(key, value, file.origin)
        self._env_untyped.update(env_settings(os.environ if environ is None else environ))
        self._type_env()

    def _type_env(self) -> None:
        """Type the environment's values whose settings are declared by now."""
        from corekit.config_sources import from_env_text

        for key in [k for k in self._env_untyped if k in self._declared]:
            variable, text = self._env_untyped.pop(key)
            self._pin(key, from_env_text(self._declared[key], variable, text), variable)

    def pin(self, key: str, value: Any, origin: str) -> None:
        """Set *key* above everything else (a command-line flag: *origin*
        names it, e.g. ``"--broker"``)."""
        self._pin(key, value, origin)

    def _pin(self, key: str, value: Any, origin: str) -> None:
        if not isinstance(key, str):
            raise TypeError(f"a setting name is a string, not {key!r}")
        self._pinned[key] = value
        self._origins[key] = origin
        if self._checked:
            self._check_pinned(key)
        object.__setattr__(self, "version", self.version + 1)

    def origin(self, key: str) -> str:
        """Where *key*'s value comes from: a flag, an environment variable,
        the config file, ``"code"`` or ``"default"``."""
        if key in self._origins:
            return self._origins[key]
        return "code" if key in self._changes else "default"

    def _check_pinned(self, key: str) -> None:
        origin = self._origins[key]
        if key not in self._declared and key not in self._warned:
            self._warned.add(key)
            from corekit.celery_names import CELERY_SETTING_NAMES

            message = unknown_setting_message(key, self._declared, CELERY_SETTING_NAMES)
            _warn_at_user_line(f"{origin}: {message}")
        problem = self._type_problem(key, self._pinned[key])
        if problem:
            raise ImproperlyConfigured(f"{origin}: {problem}")

    def check(self) -> None:
        """Called when the app finalizes: (re)load the plugins' declarations,
        warn once about each key no one declares, and raise one
        `ImproperlyConfigured` listing every value of the wrong type.  From
        then on a key is checked as it is set."""
        self._load_declarations()
        for key in self._changes:
            self._warn_if_unknown(key)
        problems = [problem for key, value in self._changes.items()
                    if key not in self._pinned and (problem := self._type_problem(key, value))]
        problems += [f"{self._origins[key]}: {problem}" for key, value in self._pinned.items()
                     if (problem := self._type_problem(key, value))]
        for key in self._pinned:
            if key not in self._declared and key not in self._warned:
                self._check_pinned(key)
        if self._env_untyped:
            from corekit.config_sources import env_typo_message

            typos = env_typo_message(self._env_untyped, self._declared)
            if typos:
                _warn_at_user_line(typos)
        if problems:
            raise ImproperlyConfigured(_listed(problems))
        object.__setattr__(self, "_checked", True)

    def _type_problem(self, key: str, value: Any) -> str | None:
        setting = self._declared.get(key)
        problem = setting.problem(value) if setting is not None else None
        return f"setting {key!r} {problem}" if problem else None

    def _warn_if_unknown(self, key: str) -> None:
        if key in self._declared or key in self._warned:
            return
        self._warned.add(key)
        from corekit.celery_names import CELERY_SETTING_NAMES  # only when warning

        message = unknown_setting_message(key, self._declared, CELERY_SETTING_NAMES)
        frame = self._set_at.get(key) or _user_frame()
        if frame is None:
            warnings.warn(message, UnknownSettingWarning, stacklevel=2)
            return
        filename, lineno, module_globals = frame
        try:
            warnings.warn_explicit(message, UnknownSettingWarning, filename, lineno,
                                   module=module_globals.get("__name__"),
                                   module_globals=module_globals)
        except ImportError:  # `python -c`: __main__'s loader cannot give its source lines
            warnings.warn_explicit(message, UnknownSettingWarning, filename, lineno,
                                   module=module_globals.get("__name__"))

    # -- the mapping -----------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        pinned = self._pinned
        if key in pinned:
            return pinned[key]
        changes = self._changes
        if key in changes:
            return changes[key]
        try:  # on every publish: one dict lookup once a default has been read
            return self._own_defaults[key]
        except KeyError:
            return self._default(key)

    def _default(self, key: str) -> Any:
        setting = self._declared.get(key) or self.declared()[key]
        if key in self._pinned:  # a plugin's setting, typed from the environment just now
            return self._pinned[key]
        default = setting.default
        if isinstance(default, (list, dict, set)):
            default = copy.deepcopy(default)
        self._own_defaults[key] = default
        return default

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"a setting name is a string, not {key!r}")
        if not self._checked and key not in _KERNEL and key not in self._set_at:
            self._set_at[key] = _user_frame()
        if self._checked:
            self._warn_if_unknown(key)
            problem = self._type_problem(key, value)
            if problem:
                raise ImproperlyConfigured(problem)
        self._changes[key] = value
        object.__setattr__(self, "version", self.version + 1)

    def __delitem__(self, key: str) -> None:
        del self._changes[key]
        object.__setattr__(self, "version", self.version + 1)

    def __iter__(self) -> Iterator[str]:
        declared = self.declared()
        yield from declared
        yield from (k for k in self.changes() if k not in declared)

    def __len__(self) -> int:
        return len(set(self.declared()) | set(self.changes()))

    def __getattr__(self, key: str) -> Any:
        if key[0] == "_":  # copy and pickle probing for hooks; no setting starts so
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"no setting called {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def changes(self) -> dict[str, Any]:
        """Only what the user set: in code, the config file, the environment
        or flags (the value that wins)."""
        return {**self._changes, **self._pinned}

    @property
    def broker(self) -> str:
        return self["broker_url"] or DEFAULT_URL

    @property
    def backend(self) -> str:
        """The result backend's URL: ``result_backend``, else where the
        broker keeps results (*results_for*, set by the app: its transport's
        ``results_url``), else the embedded default."""
        configured = self["result_backend"]
        if configured:
            return configured
        results_for = self._results_for
        return (results_for(self.broker) if results_for is not None else None) or DEFAULT_URL

    def use_results_for(self, results_for: Callable[[str], str | None]) -> None:
        """How `backend` finds the results of a broker URL when no
        ``result_backend`` is set."""
        object.__setattr__(self, "_results_for", results_for)

    def from_object(self, obj: Any, namespace: str | None = None) -> None:
        """Load every lowercase public attribute of *obj* (a module path,
        ``"module:attr"``, a module or any object), or every key of a
        mapping.  Modules, classes and functions are left out unless a
        setting has their name (a config module's imports and helpers are
        not settings).

        With *namespace* (``"COREKIT"``, or ``"CELERY"`` for a project's
        Celery settings as they are), only uppercase names starting with
        ``NAMESPACE_`` are read, the prefix dropped and the rest lowercased:
        ``COREKIT_BROKER_URL`` is ``broker_url``.  That is how a Django
        project keeps them in its settings module (``"django.conf:settings"``)."""
        if namespace is not None and not (isinstance(namespace, str) and namespace
                                          and namespace.isidentifier()):
            raise ValueError(f"namespace must be a name such as 'COREKIT', got {namespace!r}")
        if isinstance(obj, str):
            obj = _import_object(obj)
        if isinstance(obj, Mapping):
            items = dict(obj)
            if namespace is not None:
                items = dict(_namespaced(items, namespace))
            self.update(items)
            return
        if namespace is not None:
            self.update(dict(_namespaced({key: getattr(obj, key) for key in dir(obj)
                                          if key.startswith(namespace + "_")}, namespace)))
            return
        declared = self.declared()
        for key in dir(obj):
            if key.islower() and not key.startswith("_"):
                value = getattr(obj, key)
                if key in declared or not (callable(value) or isinstance(value, types.ModuleType)):
                    self[key] = value


def _namespaced(items: Mapping[Any, Any], namespace: str) -> Iterator[tuple[str, Any]]:
    """The ``NAMESPACE_NAME`` items of *items* as ``(name, value)``, lowercased."""
    prefix = namespace + "_"
    for key, value in items.items():
        if isinstance(key, str) and key.startswith(prefix) and key.isupper() and key != prefix:
            yield key[len(prefix):].lower(), value


def _listed(problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} settings have the wrong type: " + "; ".join(problems)


def _user_frame() -> tuple[str, int, dict[str, Any]] | None:
    """``(filename, line, globals)`` of the first caller outside corekit: the
    user's line that set a key, so a warning points there, not at corekit."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename.startswith(_PACKAGE_DIR)
                                 or frame.f_code.co_filename == _MAPPING_FILE):
        frame = frame.f_back
    if frame is None:
        return None
    return frame.f_code.co_filename, frame.f_lineno, frame.f_globals


def _warn_at_user_line(message: str) -> None:
    """An `UnknownSettingWarning` shown at the user's line that led here
    (the app's creation or first use), not at corekit's."""
    frame = _user_frame()
    if frame is None:
        warnings.warn(message, UnknownSettingWarning, stacklevel=2)
        return
    filename, lineno, module_globals = frame
    warnings.warn_explicit(message, UnknownSettingWarning, filename, lineno,
                           module=module_globals.get("__name__"))


def _import_object(path: str) -> Any:
    module, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj
