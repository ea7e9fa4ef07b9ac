"""Where settings come from besides the app's code: a config file in the
working directory and ``COREKIT_<SETTING>`` environment variables.

Precedence, highest first: command-line flags, the environment, the config
file, the app's code, the declared defaults.  `corekit.config.Settings`
keeps the first three as *pinned* values, which the code cannot change:
what a deployment says wins over what the code says.

The file is ``corekit.toml`` (top-level keys) or, when there is none,
``pyproject.toml``'s ``[tool.corekit]`` table.  ``app = "module"`` names the
app for every ``corekit`` command; every other key is a setting by its name.
"""
from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

from corekit.exceptions import ImproperlyConfigured
from corekit.settings import Setting

__all__ = ["ENV_PREFIX", "ConfigFile", "config_file", "env_settings", "from_env_text",
           "env_typo_message"]

ENV_PREFIX = "COREKIT_"
CONFIG_FILE = "corekit.toml"
PYPROJECT = "pyproject.toml"
#: keys of the file that are not settings
FILE_KEYS = frozenset({"app"})
#: ``COREKIT_*`` variables that are not settings (never reported as typos)
NOT_SETTINGS = frozenset({"COREKIT_APP", "COREKIT_NO_EXTENSIONS", "COREKIT_EXPECT_EXTENSIONS"})


class ConfigFile:
    """What the config file of a directory says: ``path`` (None: no file),
    ``app`` (the ``app`` key or None) and ``settings`` (every other key)."""

    __slots__ = ("path", "app", "settings")

    def __init__(self, path: str | None, app: str | None, settings: Mapping[str, Any]) -> None:
        self.path, self.app, self.settings = path, app, dict(settings)

    @property
    def origin(self) -> str:
        """How messages name it: ``corekit.toml`` or ``pyproject.toml [tool.corekit]``."""
        if self.path is None:
            return "no config file"
        name = os.path.basename(self.path)
        return name if name == CONFIG_FILE else f"{name} [tool.corekit]"


NO_FILE = ConfigFile(None, None, {})
_CACHE: dict[str, tuple[tuple[Any, ...], ConfigFile]] = {}


def config_file(directory: str | None = None) -> ConfigFile:
    """The config file of *directory* (default: the working directory),
    read again only when it changed.  A file that is not valid TOML, or an
    ``app`` that is not a string, is an `ImproperlyConfigured` naming the
    file and the line."""
    if directory is None:
        try:
            directory = os.getcwd()
        except OSError:  # the working directory was removed: it holds no file
            return NO_FILE
    for name in (CONFIG_FILE, PYPROJECT):
        path = os.path.join(directory, name)
        try:
            stat = os.stat(path)
        except OSError:
            continue
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        cached = _CACHE.get(path)
        if cached is not None and cached[0] == stamp:
            found = cached[1]
        else:
            found = _read(path, is_pyproject=name == PYPROJECT)
            _CACHE[path] = (stamp, found)
        if found.path is not None:
            return found
    return NO_FILE


def _read(path: str, is_pyproject: bool) -> ConfigFile:
    import tomllib

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ImproperlyConfigured(f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8; another program wrote something else
        raise ImproperlyConfigured(f"{path} is not valid TOML: not UTF-8 text "
                                   f"(byte {exc.start})") from None
    except OSError as exc:
        raise ImproperlyConfigured(f"cannot read {path}: {exc}") from None
    if is_pyproject:
        data = data.get("tool", {}).get("corekit")
        if data is None:  # a pyproject.toml without [tool.corekit]: no config file
            return NO_FILE
        if not isinstance(data, dict):
            raise ImproperlyConfigured(f"{path}: tool.corekit must be a table, not "
                                       f"{type(data).__name__}")
    app = data.pop("app", None)
    if app is not None and not (isinstance(app, str) and app.strip()):
        raise ImproperlyConfigured(f"{path}: app must be a module name such as \"proj\" or "
                                   f"\"proj.worker:app\", not {app!r}")
    return ConfigFile(path, app, data)


def env_settings(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """``{setting name: (variable, text)}`` for every non-empty
    ``COREKIT_NAME`` variable whose name could be a setting's.  Which are
    settings is only known once every plugin has declared its own."""
    found = {}
    for variable, text in environ.items():
        if variable.startswith(ENV_PREFIX) and text and variable not in NOT_SETTINGS:
            name = variable[len(ENV_PREFIX):].lower()
            if name.isidentifier() and not name.startswith("_"):
                found[name] = (variable, text)
    return found


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def from_env_text(setting: Setting, variable: str, text: str) -> Any:
    """The value *text* (an environment variable's) means for *setting*:
    ``"4"`` for an int, ``"false"`` for a bool, JSON for lists and mappings
    (a list also takes ``"a,b"``), the text itself where a string is
    accepted.  Anything else is an `ImproperlyConfigured` that says what
    the setting takes."""
    import json

    types = setting.type if isinstance(setting.type, tuple) else (setting.type,)
    stripped = text.strip()
    if setting.accepts_none and stripped.lower() in ("none", "null"):
        return None
    candidates: list[Any] = []
    if bool in types and stripped.lower() in _TRUE | _FALSE:
        candidates.append(stripped.lower() in _TRUE)
    for number in (int, float):
        if number in types or (number is int and float in types):
            try:
                candidates.append(number(stripped))
            except ValueError:
                pass
    try:
        candidates.append(json.loads(stripped))
    except ValueError:
        pass
    if (list in types or tuple in types) and not stripped.startswith("["):
        candidates.append([part.strip() for part in stripped.split(",") if part.strip()])
    candidates.append(text)  # a string setting takes the text as it is
    for value in candidates:
        if setting.problem(value) is None:
            return value
    raise ImproperlyConfigured(
        f"environment variable {variable}={text!r}: setting {setting.name!r} takes "
        f"{setting.type_name}" + (" (as JSON)" if {list, tuple, dict} & set(types) else ""))


def env_typo_message(names: Iterable[str], declared: Iterable[str]) -> str | None:
    """A warning for ``COREKIT_*`` variables close to a setting's name but
    naming none (``COREKIT_BROKER_ULR``), or None."""
    import difflib

    declared = list(declared)
    lines = []
    for name in sorted(names):
        close = difflib.get_close_matches(name, declared, n=1, cutoff=0.85)
        if close:
            lines.append(f"{ENV_PREFIX}{name.upper()} names no setting "
                         f"(did you mean {ENV_PREFIX}{close[0].upper()}?)")
    return "; ".join(lines) or None
