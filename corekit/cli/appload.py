"""Finding the user's app from ``-A proj``."""
from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when an app is loaded, not for `corekit --help`
    from corekit.app import Corekit


class AppLoadError(Exception):
    """The ``-A`` argument names no usable app; the message says why."""


def load_app(spec: str | None) -> Corekit:
    """``proj``, ``proj.module``, ``proj:app`` or ``proj.module:app``.

    Without an attribute, the module's ``app``, ``corekit`` or ``celery``
    attribute is used, then any `Corekit` instance in it, then the same in
    ``proj.corekit`` / ``proj.celery`` submodules.  Without *spec* (no
    ``-A``): ``COREKIT_APP``, else the config file's ``app``, else an app
    called ``default`` with no tasks.
    """
    from corekit.app import Corekit

    if not spec:
        spec, origin = app_spec_and_origin()
        if not spec:
            return Corekit("default")
        try:
            return load_app(spec)
        except AppLoadError as exc:  # say where the name came from: not from -A
            raise AppLoadError(f"{exc} (the app named by {origin})") from exc
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, _, attr = spec.partition(":")
    module = _import(module_name)
    if attr:
        try:
            obj: Any = module
            for part in attr.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            raise AppLoadError(f"module {module_name!r} has no attribute {attr!r}") from None
        if callable(obj) and not isinstance(obj, Corekit):
            obj = obj()
        if not isinstance(obj, Corekit):
            raise AppLoadError(f"{spec!r} is a {type(obj).__name__}, not a Corekit app")
        return obj
    app = _find_in(module)
    if app is None:
        for sub in ("corekit", "celery", "app"):
            try:
                submodule = importlib.import_module(f"{module_name}.{sub}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{module_name}.{sub}":
                    raise AppLoadError(f"cannot import {module_name}.{sub}: {exc}") from exc
                continue
            app = _find_in(submodule)
            if app is not None:
                break
    if app is None:
        raise AppLoadError(f"module {module_name!r} was imported but has no Corekit app "
                           f"(name one with -A {module_name}:app)")
    return app


def app_spec() -> str | None:
    """The app a command runs without ``-A``: ``COREKIT_APP``, else ``app``
    in the config file of the working directory (`corekit.config_sources`)."""
    return app_spec_and_origin()[0]


def app_spec_and_origin() -> tuple[str | None, str]:
    """`app_spec` and what named it: ``COREKIT_APP`` or the file."""
    from corekit.config_sources import config_file

    if os.environ.get("COREKIT_APP"):
        return os.environ["COREKIT_APP"], "COREKIT_APP"
    found = config_file()
    return found.app, found.origin


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise AppLoadError(f"cannot load app module {name!r}: no module named "
                               f"{exc.name!r} (looked in {os.getcwd()} and sys.path)") from exc
        raise AppLoadError(f"cannot load app module {name!r}: importing it failed: "
                           f"{exc}") from exc
    except Exception as exc:
        raise AppLoadError(f"cannot load app module {name!r}: importing it raised "
                           f"{type(exc).__name__}: {exc}{_where(exc)}") from exc


def _where(exc: BaseException) -> str:
    """`` (at proj.py:5: <that line>)``: the user's line the error came from,
    the last traceback frame outside corekit (a bad ``crontab()`` inside
    ``beat_schedule`` is then named by its entry's line)."""
    import linecache

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tb, found = exc.__traceback__, None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith(("<", package)):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    if found is None:
        return ""
    filename, lineno = found
    line = linecache.getline(filename, lineno).strip()
    shown = os.path.relpath(filename) if not os.path.relpath(filename).startswith("..") \
        else filename
    return f" (at {shown}:{lineno}: {line})" if line else f" (at {shown}:{lineno})"


def _find_in(module: Any) -> Corekit | None:
    from corekit.app import Corekit

    for attr in ("app", "corekit", "celery"):
        candidate = getattr(module, attr, None)
        if isinstance(candidate, Corekit):
            return candidate
    for value in vars(module).values():
        if isinstance(value, Corekit):
            return value
    return None
