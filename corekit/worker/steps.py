"""The worker's bootsteps: each owns one part and exposes it."""
from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from corekit.bootsteps import Step
from corekit.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from corekit.worker import Worker

logger = logging.getLogger("corekit.worker")


class TransportStep(Step):
    """The broker connection the worker consumes from."""

    def create(self, worker: Worker) -> None:
        self.transport = worker.app.connection()

    def start(self, worker: Worker) -> None:
        transport = self.transport
        worker.startup.call("broker", transport.describe(), transport.connect,
                            reset=transport.close)

    def stop(self, worker: Worker) -> None:
        self.transport.close()


class BackendStep(Step):
    """The result backend tasks store their state in."""

    def create(self, worker: Worker) -> None:
        self.backend = worker.app.backend

    def stop(self, worker: Worker) -> None:
        self.backend.close()


class ResultWriterStep(Step):
    """The thread that stores finished tasks' states in batches."""

    requires = (BackendStep,)

    def create(self, worker: Worker) -> None:
        from corekit.worker.result_writer import ResultWriter

        self.writer = ResultWriter(worker.blueprint[BackendStep].backend)

    def start(self, worker: Worker) -> None:
        self.writer.start()

    def stop(self, worker: Worker) -> None:
        self.writer.stop()


class PoolStep(Step):
    """The pool that runs task bodies."""

    def create(self, worker: Worker) -> None:
        plugins = worker.app.plugins
        factory = plugins.get("pools", worker.pool_name)
        # early.py stops at the first patch it finds; two plugins patching
        # for one pool are an error here, naming both
        plugins.registry("early_patches")
        self.pool = factory(worker.concurrency, **worker.pool_options)
        check_time_limits(self.pool, worker.app.tasks.values())

    def start(self, worker: Worker) -> None:
        self.pool.start()

    def stop(self, worker: Worker) -> None:
        self.pool.stop(wait=True)


def check_time_limits(pool: Any, tasks: Any) -> None:
    """Refuse to start when a task has a time limit this pool cannot enforce."""
    for task in tasks:
        for limit in ("time_limit", "soft_time_limit"):
            if getattr(task, limit, None) and not pool.enforces(task, limit):
                raise ImproperlyConfigured(
                    f"task {task.name} has a {limit}, which the {pool.name} pool cannot "
                    f"enforce: use a pool that can (a pool's supports names the limits "
                    f"it enforces), or drop the limit")


class HeartbeatStep(Step):
    """Keeps this worker's broker leases alive from a thread of its own, so a
    long task never makes its messages look abandoned."""

    requires = (TransportStep,)

    def create(self, worker: Worker) -> None:
        self.transport = worker.blueprint[TransportStep].transport
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.beat, name="corekit-heartbeat", daemon=True)

    def beat(self) -> None:
        """Beat every ``heartbeat_interval`` seconds; an outage is logged
        once at WARNING (each failed beat's traceback at DEBUG), and its end."""
        from corekit.worker.startup import one_line_reason

        interval, failures = self.transport.heartbeat_interval, 0
        while not self.stopping.wait(interval):
            try:
                self.transport.heartbeat()
            except Exception as exc:  # a broker hiccup must not end the heartbeat
                failures += 1
                if failures == 1:
                    logger.warning("Heartbeat to the broker at %s failed: %s; trying again "
                                   "every %g s", self.transport.describe(),
                                   one_line_reason(exc), interval)
                logger.debug("Heartbeat to the broker failed (attempt %d)", failures,
                             exc_info=True)
            else:
                if failures:
                    logger.warning("Heartbeat to the broker is back after %d failed "
                                   "attempt(s)", failures)
                    failures = 0

    def start(self, worker: Worker) -> None:
        transport = self.transport
        worker.startup.call("broker", transport.describe(), transport.heartbeat,
                            reset=transport.close)
        self.thread.start()

    def stop(self, worker: Worker) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join()


class ConsumerStep(Step):
    """The loop that feeds the pool; the worker runs it."""

    requires = (TransportStep, ResultWriterStep, PoolStep, HeartbeatStep)

    def create(self, worker: Worker) -> None:
        from corekit.worker.consumer import Consumer

        bp = worker.blueprint
        self.consumer = Consumer(
            worker.app, bp[TransportStep].transport, bp[ResultWriterStep].writer,
            bp[PoolStep].pool, worker.queues, worker.hostname, worker.prefetch_multiplier)

    def stop(self, worker: Worker) -> None:
        self.consumer.stop()


#: The steps every worker has.  Everything else (remote control, events, a
#: plugin's own parts) comes from ``corekit_register_bootsteps``.  The lease
#: heartbeat is core: without it another worker takes over this one's
#: messages while they run (at-least-once delivery rests on it).
CORE_STEPS: tuple[type[Step], ...] = (
    TransportStep, BackendStep, ResultWriterStep, PoolStep, HeartbeatStep, ConsumerStep)


def plugin_steps(manager: Any) -> dict[type[Step], str]:
    """``{step class: plugin name}`` for every step the installed plugins add
    through ``corekit_register_bootsteps``, in plugin registration order.
    Two steps of one name (from two plugins, or a plugin's and a core one)
    are an `ImproperlyConfigured` naming both."""
    owners: dict[type[Step], str] = {}
    by_name = {cls.name: "corekit" for cls in CORE_STEPS}
    for impl in manager.implementations("corekit_register_bootsteps"):
        for cls in impl.function() or ():
            if not (isinstance(cls, type) and issubclass(cls, Step)):
                raise ImproperlyConfigured(
                    f"plugin {impl.plugin_name!r} registered {cls!r} as a bootstep: "
                    f"corekit_register_bootsteps must return Step subclasses")
            if cls.name in by_name:
                raise ImproperlyConfigured(
                    f"bootstep {cls.name!r} is added by both {_who(by_name[cls.name])} and "
                    f"plugin {impl.plugin_name!r}: give one of the steps another name")
            owners[cls], by_name[cls.name] = impl.plugin_name, impl.plugin_name
    return owners


def _who(owner: str) -> str:
    return "corekit's core steps" if owner == "corekit" else f"plugin {owner!r}"


def default_hostname() -> str:
    import socket

    return f"corekit@{socket.gethostname()}"


def expand_hostname(template: str) -> str:
    """Celery's ``-n`` expansions: ``%h`` host, ``%n`` name, ``%d`` domain."""
    import socket

    host = socket.gethostname()
    name, _, domain = host.partition(".")
    out = template.replace("%h", host).replace("%n", name).replace("%d", domain)
    out = out.replace("%p", str(os.getpid()))
    return out if "@" in out else f"{out}@{host}"
