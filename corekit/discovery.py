"""``app.autodiscover_tasks()``: import the ``tasks`` module of each package
an app names, or of every package a plugin names (Django's installed apps).

Discovery is lazy, as in Celery: asked for, it waits for the app's finalize
(its first real use), so a Django project may ask for it in the module that
creates the app, before Django's apps are loaded.  A package without the
module is skipped; a module that fails while imported is an error naming it.
"""
from __future__ import annotations

import importlib
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Sequence, Union

if TYPE_CHECKING:
    from corekit.app import Corekit

logger = logging.getLogger("corekit")

Packages = Union[Sequence[str], Callable[[], Sequence[str]], None]


class TaskDiscovery:
    """The discoveries an app was asked for and has not done yet."""

    def __init__(self, app: Corekit) -> None:
        self.app = app
        self.pending: list[tuple[Packages, str]] = []
        self._lock = threading.RLock()

    def ask(self, packages: Packages, related_name: str) -> None:
        if not (isinstance(related_name, str) and related_name.isidentifier()):
            raise ValueError(f"related_name must be a module name such as 'tasks', "
                             f"got {related_name!r}")
        if isinstance(packages, str):
            raise TypeError(f"packages must be a list of package names (or a callable "
                            f"returning one), got the string {packages!r}")
        with self._lock:
            self.pending.append((packages, related_name))

    def run(self, report: bool = False) -> list[str]:
        """Import what can be imported now; return the modules imported.
        A request whose packages no plugin can name yet stays pending (with
        *report*, as when a worker starts, that is logged)."""
        imported: list[str] = []
        with self._lock:
            waiting = []
            for packages, related_name in self.pending:
                names = self._packages(packages)
                if names is None:
                    waiting.append((packages, related_name))
                    continue
                imported += [m for m in (import_related(p, related_name) for p in names) if m]
            self.pending = waiting
        if waiting and report:
            logger.warning("autodiscover_tasks() was given no packages and no plugin names "
                           "any (Django's does once its apps are loaded): pass packages=[...] "
                           "or start the worker through manage.py")
        return imported

    def _packages(self, packages: Packages) -> list[str] | None:
        if callable(packages):
            packages = packages()
        if packages is not None:
            return [_package_name(p) for p in packages]
        plugins = self.app.plugins
        if not plugins.implements("corekit_task_packages"):
            return None
        answers = plugins.hook.corekit_task_packages(app=self.app)
        if all(answer is None for answer in answers):
            return None
        names: list[str] = []
        for answer in reversed(answers):  # pluggy answers last registered first
            names += [n for n in map(_package_name, answer or ()) if n not in names]
        return names


def _package_name(package: Any) -> str:
    """A package name; Django's AppConfig is taken by its ``name``."""
    name = getattr(package, "name", package)
    if not isinstance(name, str) or not name:
        raise TypeError(f"autodiscover_tasks: a package must be named by a string, "
                        f"got {package!r}")
    return name


def import_related(package: str, related_name: str) -> str | None:
    """Import ``package.related_name``; None when the package has no such
    module.  A package that cannot be imported, or an error inside the
    module, is raised."""
    module = f"{package}.{related_name}"
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            logger.debug("autodiscover_tasks: no module %s", module)
            return None
        raise
    return module
