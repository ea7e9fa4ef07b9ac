"""What a health check can honestly say about a worker.

"Alive" is not "a thread answers": the consumer loop counts its turns
(`Consumer.turns`: an idle turn lasts at most half a second, a failed one
its back-off and reconnect), and a `Health` samples that count.  A count
that has not moved for ``worker_health_stall_timeout`` seconds is a stalled
loop (a task blocking an inline pool's loop, a call to the broker that never
returns, a deadlock) whatever the other threads do.

- live: the loop turns (while the broker is lost too: it is retrying, and a
  restart would not bring the broker back), or the worker is still starting
  or shutting down warmly;
- ready (consuming): it is live, started, not shutting down, and its last
  turn reached the broker.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corekit.worker import Worker

logger = logging.getLogger("corekit.health")

#: Seconds between samples of the loop's turn count (and looks at the file).
SAMPLE_EVERY = 0.5


class Health:
    """The state of one worker, sampled from its consumer loop; `report`
    is what the checks answer."""

    def __init__(self, worker: Worker, stall_timeout: float) -> None:
        self.worker = worker
        self.stall_timeout = stall_timeout
        self._lock = threading.Lock()
        self._seen = -1
        self._moved_at = time.monotonic()

    def _consumer(self) -> Any:
        return self.worker.consumer if self.worker.ready.is_set() else None

    def sample(self) -> float:
        """Seconds since the loop's turn count last moved (any thread)."""
        consumer = self._consumer()
        now = time.monotonic()
        with self._lock:
            if consumer is None:  # not started: the stall clock starts with the loop
                self._moved_at = now
            elif consumer.turns != self._seen:
                self._seen, self._moved_at = consumer.turns, now
            return now - self._moved_at

    def report(self) -> dict[str, Any]:
        """``{"status", "live", "ready", "node", "broker", "reason"...}``."""
        idle = self.sample()
        consumer = self._consumer()
        worker = self.worker
        out: dict[str, Any] = {"node": worker.hostname, "pid": os.getpid()}
        if worker.stopping.is_set():
            status, live, reason = "stopping", True, "the worker is shutting down"
            broker = "closing"
        elif consumer is None:
            status, live, reason = "starting", True, "the worker is starting (connecting)"
            broker = "connecting"
        else:
            error = consumer.broker_error
            broker = "connected" if error is None else "lost"
            out["last_turn"] = round(idle, 3)
            if idle > self.stall_timeout:
                status, live = "stalled", False
                reason = (f"the consumer loop has not turned for {idle:.0f} s (more than "
                          f"worker_health_stall_timeout, {self.stall_timeout:g} s)")
            elif error is not None:
                status, live, reason = "broker lost", True, f"broker connection lost: {error}"
            else:
                status, live, reason = "ok", True, None
        out.update(status=status, live=live, ready=status == "ok", broker=broker)
        if reason:
            out["reason"] = reason
        return out


class HealthFile:
    """Touches *path* every *interval* seconds while the worker is ready, from
    a thread of its own; the file is removed at start (a stale one from an
    earlier run says nothing) and at stop."""

    def __init__(self, health: Health, path: str, interval: float) -> None:
        self.health, self.path, self.interval = health, path, interval
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="corekit-health-file", daemon=True)
        self._failed = False

    def start(self) -> None:
        self.remove()
        self.thread.start()

    def run(self) -> None:
        touched = float("-inf")
        while not self.stopping.wait(min(SAMPLE_EVERY, self.interval)):
            if time.monotonic() - touched < self.interval:
                self.health.sample()
                continue
            if self.health.report()["ready"]:
                touched = time.monotonic()
                self.touch()

    def touch(self) -> None:
        try:
            with open(self.path, "a"):
                pass
            os.utime(self.path)
        except OSError as exc:
            if not self._failed:
                logger.warning("health: cannot touch %s: %s", self.path, exc)
            self._failed = True
        else:
            if self._failed:
                logger.warning("health: %s is touched again", self.path)
            self._failed = False

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def stop(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(5)
        self.remove()
