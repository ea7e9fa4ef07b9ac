"""The worker: a blueprint of bootsteps around the consumer loop."""
from __future__ import annotations

import logging
import os
import signal
import threading
from typing import TYPE_CHECKING, Any, Sequence

from corekit import signals
from corekit.bootsteps import Blueprint
from corekit.worker.startup import StartupAborted, StartupRetry
from corekit.worker.steps import (CORE_STEPS, BackendStep, ConsumerStep, PoolStep,
                                  TransportStep, default_hostname, expand_hostname,
                                  plugin_steps)

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.worker.consumer import Consumer

logger = logging.getLogger("corekit.worker")

#: The steps every worker has; plugins add theirs (`plugin_steps`).
DEFAULT_STEPS = CORE_STEPS

#: Seconds between worker-heartbeat events (Celery's default).
HEARTBEAT_INTERVAL = 2.0

__all__ = ["Worker"]


class Worker:
    """Consumes *queues* and runs tasks in a pool of *concurrency* slots.

    `start` blocks until `stop` is called (from another thread or a signal),
    then shuts down warmly: prefetched messages go back to the broker and
    running tasks finish.
    """

    def __init__(self, app: Corekit, *, queues: Sequence[str] | None = None,
                 exclude_queues: Sequence[str] = (), concurrency: int | None = None,
                 pool: str | None = None, hostname: str | None = None,
                 prefetch_multiplier: int | None = None,
                 time_limit: float | None = None,
                 soft_time_limit: float | None = None,
                 task_events: bool | None = None,
                 without_heartbeat: bool = False,
                 heartbeat_interval: float | None = None, **pool_options: Any) -> None:
        conf = app.conf
        self.app = app
        self.pool_name = pool or conf.worker_pool
        self.concurrency = int(concurrency or conf.worker_concurrency or os.cpu_count() or 1)
        if app.plugins.get("pools", self.pool_name).inline:  # runs in the consumer's thread
            self.concurrency = 1
        known = app.queues
        self.queues = [q for q in (queues or known.names()) if q not in exclude_queues]
        for name in self.queues:
            known.get(name)  # QueueNotFound when it is unknown and may not be created
        if not self.queues:
            raise ValueError("no queues left to consume from after excluding "
                             f"{', '.join(exclude_queues)}")
        name = hostname or conf.worker_hostname
        self.hostname = expand_hostname(name) if name else default_hostname()
        self.prefetch_multiplier = int(prefetch_multiplier or conf.worker_prefetch_multiplier)
        #: what the pool plugin gets besides the concurrency: the worker's
        #: own, and any other keyword given to the worker (a pool's override
        #: of one of its own settings; None means "not given, use the
        #: setting"); a pool refuses at start-up what it cannot do
        self.pool_options: dict[str, Any] = {
            **pool_options, "app": app, "hostname": self.hostname,
            "time_limit": time_limit or conf.task_time_limit,
            "soft_time_limit": soft_time_limit or conf.task_soft_time_limit}
        #: send task-* events (``-E``); worker-* events go every
        #: ``heartbeat_interval`` seconds unless *without_heartbeat*
        self.send_task_events = bool(conf.worker_send_task_events if task_events is None
                                     else task_events)
        self.heartbeat_interval = (None if without_heartbeat
                                   else float(heartbeat_interval or HEARTBEAT_INTERVAL))
        added = plugin_steps(app.plugins)
        self.blueprint = Blueprint([*DEFAULT_STEPS, *added], owners=added)
        self.ready = threading.Event()
        #: set by `stop`; ends a wait for the broker at start-up
        self.stopping = threading.Event()
        #: how steps that connect at start-up wait for a broker that is down
        self.startup = StartupRetry(conf, self.stopping)
        self._signals = 0
        #: set by `restart` (SIGHUP): once `start` returns, ``corekit worker``
        #: runs its command line again in this process
        #: (`corekit.cli.daemon.restart_in_place`)
        self.restart_requested = False

    @property
    def consumer(self) -> Consumer:
        return self.blueprint[ConsumerStep].consumer

    @property
    def transport(self) -> Any:
        return self.blueprint[TransportStep].transport

    @property
    def backend(self) -> Any:
        return self.blueprint[BackendStep].backend

    @property
    def pool(self) -> Any:
        return self.blueprint[PoolStep].pool

    def setup(self) -> None:
        """Import tasks and build the steps (no connection yet)."""
        self.app.finalize()
        if not self.app.plugins.signal_receivers_connected:  # before the pool forks
            self.app.plugins.connect_signal_receivers()
        self.app.discover_tasks(report=True)  # what was asked for too early at finalize
        if not self.app.tasks.user_tasks():
            logger.warning(
                "%s: app %r registers no tasks: every task message it takes will be "
                "dead-lettered as unknown. Name the app with -A MODULE, COREKIT_APP, or "
                "app = \"MODULE\" in corekit.toml or pyproject.toml's [tool.corekit]; "
                "its tasks come from the modules it imports (include=[...]).",
                self.hostname, self.app.main or "__main__")
        self.blueprint.apply(self)

    def start(self, install_signals: bool = False) -> None:
        """Run until stopped.  With *install_signals*, SIGTERM and SIGINT
        shut down warmly; a second one exits at once (cold)."""
        if self.blueprint.state == "initial" and not self.blueprint.steps:
            self.setup()
        if install_signals:
            self.install_signal_handlers()
        hook = self.app.plugins.hook
        signals.worker_init.send(self)
        try:
            self.blueprint.start(self)
        except StartupAborted as exc:  # SIGTERM while waiting for the broker
            logger.info("%s stopped before it was ready (%s)", self.hostname, exc)
            return
        try:
            # shown at the default level (warning) too: a service manager's log says it
            logger.log(logging.INFO if logger.isEnabledFor(logging.INFO) else logging.WARNING,
                       "%s ready.", self.hostname)
            hook.corekit_worker_ready(worker=self)
            signals.worker_ready.send(self)
            self.ready.set()
            self.consumer.run()
        finally:
            try:
                hook.corekit_worker_shutdown(worker=self)
                signals.worker_shutdown.send(self)
            finally:
                self.blueprint.stop(self)
                logger.info("%s stopped.", self.hostname)

    def stop(self) -> None:
        """Ask for a warm shutdown; returns at once."""
        self.stopping.set()
        if self.blueprint.steps:
            self.consumer.stop()

    def restart(self) -> None:
        """Warm shutdown, asking to be started again (`restart_requested`):
        ``corekit worker`` then re-runs its command line in this process."""
        self.restart_requested = True
        self.stop()

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: warm shutdown; SIGHUP: `restart`; SIGUSR1: every
        thread's stack to the log."""
        from corekit.logfiles import dump_stacks

        # Asking signal.signal, not comparing current_thread() with
        # main_thread(): under eventlet's monkey patching those two differ
        # even in the main thread.
        for signum, handler in ((signal.SIGTERM, self._on_signal),
                                (signal.SIGINT, self._on_signal),
                                (signal.SIGHUP, self._on_restart_signal),
                                (signal.SIGUSR1, dump_stacks)):
            try:
                signal.signal(signum, handler)
            except ValueError:  # not the main thread: signals are its owner's
                return

    def _on_restart_signal(self, signum: int, frame: Any) -> None:
        if self.stopping.is_set():
            logger.warning("SIGHUP received while stopping: no restart")
            return
        logger.warning("SIGHUP received: restarting (warm shutdown: running tasks finish, "
                       "prefetched messages go back to the broker; then the same command "
                       "line again, same pid)")
        self.restart()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals += 1
        self.restart_requested = False  # a stop wins over a restart in progress
        name = signal.Signals(signum).name
        if self._signals == 1:
            logger.warning("%s received: warm shutdown (running tasks finish, prefetched "
                           "messages go back to the broker); again to quit at once", name)
            self.stop()
        else:
            logger.warning("%s received again: cold shutdown", name)
            os._exit(1)
