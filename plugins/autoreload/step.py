"""`AutoreloadStep`: the watcher of ``corekit worker --autoreload``."""
from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

from corekit.bootsteps import Step
from corekit.exceptions import ImproperlyConfigured
from corekit.worker.steps import ConsumerStep

if TYPE_CHECKING:
    from corekit.worker import Worker


class AutoreloadStep(Step):
    """Watches the app's task modules once the worker consumes; a change
    sends this process SIGHUP (`corekit.worker.Worker` restarts on it)."""

    requires = (ConsumerStep,)

    def enabled(self, worker: Worker) -> bool:
        return bool(worker.app.conf.worker_autoreload)

    def create(self, worker: Worker) -> None:
        import importlib

        if worker.pool_name in worker.app.plugins.registry("early_patches"):
            raise ImproperlyConfigured(
                f"--autoreload (worker_autoreload) does not work with the {worker.pool_name} "
                f"pool: it patches the interpreter, and the file watcher would block its "
                f"green threads; use another pool during development")

        try:  # here, so the worker stops before it connects
            importlib.import_module("watchfiles")
        except ImportError:
            raise ImproperlyConfigured(
                "--autoreload (worker_autoreload) needs the watchfiles library, which is not "
                "installed: pip install 'corekit[autoreload]'") from None
        from corekit.plugins.autoreload.watcher import Watcher, source_files

        self.watcher = Watcher(source_files(worker.app, os.getcwd()), restart)

    def start(self, worker: Worker) -> None:
        self.watcher.start()

    def stop(self, worker: Worker) -> None:
        self.watcher.stop()


def restart() -> bool:
    """SIGHUP to this process, when a handler will restart it (the worker's,
    installed by ``corekit worker``); False when SIGHUP would kill it."""
    if signal.getsignal(signal.SIGHUP) in (signal.SIG_DFL, signal.SIG_IGN, None):
        return False
    os.kill(os.getpid(), signal.SIGHUP)
    return True
