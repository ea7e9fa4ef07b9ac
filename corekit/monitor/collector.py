"""What the web monitor knows, kept up to date by two background threads.

- The events thread feeds every event from the ``celeryev`` exchange into a
  cluster `State`, the charts' `Throughput` and the Prometheus counters.
- The inspect thread asks the workers every few seconds for what events do
  not carry (pool, queues consumed, registered tasks, ``stats``) and reads
  the length of each queue the app or a worker knows.  A worker that runs
  without events still shows up, from its inspect replies.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Mapping

from corekit.events.receiver import EventReceiver
from corekit.events.state import State
from corekit.events.truncate import DEFAULT_MAX_FIELD_SIZE
from corekit.monitor.metrics import TaskMetrics
from corekit.monitor.series import Throughput

if TYPE_CHECKING:
    from corekit.app import Corekit

logger = logging.getLogger("corekit.monitor")

#: Seconds to wait before listening again after the broker connection failed.
RECONNECT_DELAY = 2.0
#: The inspect commands each round asks every worker.
INSPECTED = ("stats", "active_queues", "registered")


class Collector:
    """The cluster as the monitor sees it; `start` and `stop` its threads."""

    def __init__(self, app: Corekit, *, inspect_interval: float = 5.0,
                 inspect_timeout: float = 1.0, max_tasks: int = 10000,
                 max_workers: int = 5000,
                 max_field_size: int = DEFAULT_MAX_FIELD_SIZE) -> None:
        self.app = app
        self.inspect_interval = inspect_interval
        self.inspect_timeout = inspect_timeout
        self.state: State = State(max_workers_in_memory=max_workers,
                                  max_tasks_in_memory=max_tasks, max_field_size=max_field_size)
        self.throughput = Throughput()
        self.metrics = TaskMetrics()
        #: hostname -> {"stats", "active_queues", "registered", "updated"}
        self.details: dict[str, dict[str, Any]] = {}
        #: queue name -> messages waiting (None: the broker would not say)
        self.queue_lengths: dict[str, int | None] = {}
        self.started_at = time.time()
        self._stopping = threading.Event()
        self._inspected = threading.Event()
        self._receiver: EventReceiver | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        for target, name in ((self._listen, "corekit-monitor-events"),
                             (self._poll, "corekit-monitor-inspect")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        receiver = self._receiver
        if receiver is not None:
            receiver.close()
        for thread in self._threads:
            thread.join(timeout)

    def wait_inspected(self, timeout: float) -> bool:
        """Wait for the first round of inspect replies and queue lengths."""
        return self._inspected.wait(timeout)

    # -- events --------------------------------------------------------------------
    def on_event(self, event: Mapping[str, Any]) -> None:
        """Take one event (also usable without the events thread)."""
        subject = self.state.event(dict(event))
        kind = str(event.get("type", ""))
        name = getattr(subject, "name", None) if kind.startswith("task-") else None
        self.metrics.event(event, name)
        self.throughput.event(kind)

    def _listen(self) -> None:
        while not self._stopping.is_set():
            try:
                self._receiver = EventReceiver(self.app, {"*": self.on_event})
                self._receiver.capture(should_stop=self._stopping.is_set)
            except Exception:
                if self._stopping.is_set():
                    break
                logger.exception("monitor: the event receiver failed; listening again in "
                                 "%.0f s", RECONNECT_DELAY)
                self._stopping.wait(RECONNECT_DELAY)
            finally:
                if self._receiver is not None:
                    self._receiver.close()

    # -- inspect and queue lengths --------------------------------------------------
    def _poll(self) -> None:
        while not self._stopping.is_set():
            try:
                self.refresh()
            except Exception:
                logger.exception("monitor: asking the workers failed")
            self._inspected.set()
            self._stopping.wait(self.inspect_interval)

    def refresh(self) -> None:
        """One round: inspect every worker, then read the queue lengths."""
        inspect = self.app.control.inspect(timeout=self.inspect_timeout)
        # side by side: each waits the whole timeout for workers that may answer late
        with ThreadPoolExecutor(len(INSPECTED), thread_name_prefix="corekit-monitor") as pool:
            answers = dict(zip(INSPECTED, pool.map(lambda c: getattr(inspect, c)() or {},
                                                   INSPECTED)))
        replies: dict[str, dict[str, Any]] = {}
        for command, answer in answers.items():
            for hostname, reply in answer.items():
                replies.setdefault(hostname, {})[command] = reply
        now = time.time()
        for hostname, reply in replies.items():
            self.details[hostname] = {**self.details.get(hostname, {}), **reply, "updated": now}
        self._read_queue_lengths()

    def queue_names(self) -> list[str]:
        """The app's queues and every queue a worker said it consumes."""
        names = dict.fromkeys(self.app.queues.names())
        for details in list(self.details.values()):
            for queue in details.get("active_queues") or ():
                if isinstance(queue, Mapping) and queue.get("name"):
                    names[str(queue["name"])] = None
        return list(names)

    def _read_queue_lengths(self) -> None:
        transport = self.app.producer
        lengths: dict[str, int | None] = {}
        for name in self.queue_names():
            lengths[name] = _try(lambda: transport.queue_size(name), name)
        self.queue_lengths = lengths

    def answered_recently(self, hostname: str) -> bool:
        """Whether *hostname* replied to one of the last two inspect rounds."""
        updated = self.details.get(hostname, {}).get("updated")
        return updated is not None and time.time() - updated < 2.5 * self.inspect_interval


def _try(read: Callable[[], int], queue: str) -> int | None:
    try:
        return int(read())
    except NotImplementedError:
        return None
    except Exception as exc:
        logger.warning("monitor: cannot read the length of queue %r: %s", queue, exc)
        return None
