"""The autoreload watcher: which files, and what a change does.

Watched: the source file of every module that registered one of the app's
tasks, and of the module that holds the app, when it is under the working
directory (installed libraries are left alone).  Their folders are watched,
not the files, so an editor that saves by writing a new file and renaming
it over the old one is seen too.

A change is debounced (an editor's save is often several writes), then the
changed files are compiled: one with a syntax error is logged at ERROR and
the worker keeps running its old code, watching for the next save; otherwise
"autoreload: FILE changed, restarting" is logged at WARNING and the worker
restarts.  An error raised while the new code is imported (a NameError at
module level, say) ends the restarted worker as at any start.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:
    from corekit.app import Corekit

logger = logging.getLogger("corekit.autoreload")

#: Milliseconds without a new change before a batch of changes is acted on,
#: and the longest a batch is gathered (watchfiles' step and debounce).
QUIET_MS = 200
GATHER_MS = 1600


def source_files(app: Corekit, root: str) -> list[str]:
    """The source files of the app's task modules and of the app's own
    module, under *root*, sorted."""
    names = {type(task).__module__ for name, task in app.tasks.items()
             if name in set(app.tasks.user_tasks())}
    names |= {name for name, module in list(sys.modules.items())
              if module is not None and _holds(module, app)}
    root = os.path.join(os.path.realpath(root), "")
    files = set()
    for name in names:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path and path.endswith(".py"):
            path = os.path.realpath(path)
            if path.startswith(root):
                files.add(path)
    return sorted(files)


def _holds(module: Any, app: Any) -> bool:
    try:
        return any(value is app for value in vars(module).values())
    except TypeError:  # a module-like object without a __dict__
        return False


def syntax_error(path: str) -> str | None:
    """Why *path* does not compile (one line), or None."""
    try:
        with open(path, "rb") as source:
            compile(source.read(), path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f"line {exc.lineno}" if exc.lineno else "?"
        return f"{type(exc).__name__} at {where}: {exc.msg}"
    except (OSError, ValueError) as exc:  # removed, unreadable, a NUL byte
        return f"{type(exc).__name__}: {exc}"
    return None


class Watcher:
    """Watches *files* from a daemon thread; calls *restart* once after a
    change that compiles (it returns False when it cannot restart: then the
    watcher logs why and goes on watching)."""

    def __init__(self, files: Iterable[str], restart: Callable[[], bool]) -> None:
        self.files = frozenset(files)
        self.restart = restart
        self.stopping = threading.Event()
        self.restarting = False
        self.thread = threading.Thread(target=self.run, name="corekit-autoreload",
                                       daemon=True)

    def start(self) -> None:
        if not self.files:
            logger.warning("autoreload: no source file of the app or its tasks under %s: "
                           "nothing to watch", os.getcwd())
            return
        logger.info("autoreload: watching %s", ", ".join(map(_short, sorted(self.files))))
        self.thread.start()

    def run(self) -> None:
        import watchfiles

        logging.getLogger("watchfiles").setLevel(logging.WARNING)  # "1 change detected"
        folders = sorted({os.path.dirname(path) for path in self.files})
        for batch in watchfiles.watch(*folders, watch_filter=self._watched, recursive=False,
                                      debounce=GATHER_MS, step=QUIET_MS,
                                      stop_event=self.stopping, raise_interrupt=False):
            if self.changed(sorted({path for _, path in batch})):
                return

    def _watched(self, change: Any, path: str) -> bool:
        return os.path.realpath(path) in self.files

    def changed(self, paths: list[str]) -> bool:
        """Act on one debounced batch; True once a restart was asked for."""
        broken = [(path, why) for path, why in ((p, syntax_error(p)) for p in paths) if why]
        for path, why in broken:
            logger.error("autoreload: %s changed but does not compile (%s): not restarting; "
                         "the worker runs the code it has until the file is saved again",
                         _short(path), why)
        if broken or self.restarting:
            return False
        logger.warning("autoreload: %s changed, restarting", ", ".join(map(_short, paths)))
        if not self.restart():
            logger.error("autoreload: cannot restart: SIGHUP has no handler in this process "
                         "(--autoreload works in `corekit worker`)")
            return False
        self.restarting = True
        return True

    def stop(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(5)


def _short(path: str) -> str:
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else path
