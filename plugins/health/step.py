"""`HealthStep`: the health file and the HTTP health checks of a worker."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from corekit.bootsteps import Step
from corekit.exceptions import ImproperlyConfigured
from corekit.worker.steps import ConsumerStep

if TYPE_CHECKING:
    from corekit.worker import Worker


class HealthStep(Step):
    """Enabled by ``worker_health_file`` or ``worker_health_port``.  It
    listens and starts its threads when created, so a probe gets "starting"
    while the worker waits for its broker, and a port in use stops the
    worker before it connects; it stops first (reverse order), after the
    consumer loop ended."""

    requires = (ConsumerStep,)

    def enabled(self, worker: Worker) -> bool:
        conf = worker.app.conf
        return bool(conf.worker_health_file) or conf.worker_health_port is not None

    def create(self, worker: Worker) -> None:
        from corekit.plugins.health.check import Health, HealthFile

        conf = worker.app.conf
        stall, interval = (float(conf.worker_health_stall_timeout),
                           float(conf.worker_health_interval))
        for name, value in (("worker_health_stall_timeout", stall),
                            ("worker_health_interval", interval)):
            if not value > 0:
                raise ImproperlyConfigured(f"{name} must be more than 0 seconds, not {value:g}")
        self.health = Health(worker, stall)
        self.file: HealthFile | None = None
        self.server: Any = None
        path = conf.worker_health_file
        if path:
            check_directory(path)
            self.file = HealthFile(self.health, path, interval)
        if conf.worker_health_port is not None:
            self.server = http_server(self.health, conf.worker_health_host,
                                      conf.worker_health_port)
            os.register_at_fork(after_in_child=self.server.close_sockets)
            self.server.start()
        if self.file is not None:
            self.file.start()

    def stop(self, worker: Worker) -> None:
        if self.server is not None:
            self.server.close()
        if self.file is not None:
            self.file.stop()


def check_directory(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ImproperlyConfigured(f"worker_health_file {path}: the directory {folder} does "
                                   f"not exist")
    if os.path.isdir(path):
        raise ImproperlyConfigured(f"worker_health_file {path} is a directory")


def http_server(health: Any, host: str, port: int) -> Any:
    port = int(port)
    if not 0 <= port <= 65535:
        raise ImproperlyConfigured(f"worker_health_port is 0 to 65535, not {port}")
    try:
        from corekit.plugins.health.http import HealthServer
    except ImportError as exc:
        if not (exc.name or "").startswith("tornado"):
            raise
        raise ImproperlyConfigured(
            "worker_health_port needs tornado, which is not installed: pip install "
            "'corekit[health]'") from None
    return HealthServer(health, host, port)
