"""The worker's side of remote control: revocations.

At start the control step subscribes to the ``celery.pidbox`` broadcast
(first, so nothing is missed), then loads the revocations the result backend
keeps, so a worker that starts later honours revokes made before it ran.
From then on a thread applies each live ``revoke`` /
``revoke_by_stamped_headers`` request, terminating running tasks when asked.
"""
from __future__ import annotations

import json
import logging
import signal
import threading
import time
from typing import TYPE_CHECKING, Any, Mapping

from corekit.bootsteps import Step
from corekit.control import PIDBOX
from corekit.worker.steps import BackendStep, ConsumerStep

if TYPE_CHECKING:
    from corekit.transport import Subscription
    from corekit.worker import Worker
    from corekit.worker.consumer import Consumer

logger = logging.getLogger("corekit.worker")

POLL = 0.5


def signal_number(name: Any) -> int:
    """``"SIGKILL"``, ``"KILL"``, ``9`` -> 9; an unknown name is SIGTERM."""
    if isinstance(name, int):
        return name
    text = str(name or "SIGTERM").upper()
    try:
        return int(signal.Signals(text if text.startswith("SIG") else "SIG" + text))
    except ValueError:
        logger.warning("Unknown signal %r in a revoke: using SIGTERM", name)
        return int(signal.SIGTERM)


class ControlStep(Step):
    """Revocations from the result backend and from live broadcasts."""

    requires = (BackendStep, ConsumerStep)

    def create(self, worker: Worker) -> None:
        self.worker = worker
        self.consumer: Consumer = worker.blueprint[ConsumerStep].consumer
        self.stopping = threading.Event()
        self.subscription: Subscription | None = None
        self.thread = threading.Thread(target=self.listen, name="corekit-control", daemon=True)

    def start(self, worker: Worker) -> None:
        transport = worker.app.connection()
        if "broadcast" in transport.capabilities:
            self.subscription = transport.subscribe_broadcast([PIDBOX])
        else:
            logger.warning("%s has no broadcast: revokes reach this worker only when it "
                           "starts", transport.describe())
        self.load_kept()
        if self.subscription is not None:
            self.thread.start()

    def stop(self, worker: Worker) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join()
        if self.subscription is not None:
            self.subscription.close()

    def load_kept(self) -> None:
        revoked = self.consumer.revoked
        try:
            entries = self.worker.blueprint[BackendStep].backend.revocations(
                time.time() - revoked.expires)
        except NotImplementedError as exc:
            logger.info("%s: revokes made before this worker started are not known", exc)
            return
        for entry in entries:
            revoked.add(entry)
        if entries:
            logger.info("Honouring %d revocation(s) made before this worker started",
                        len(entries))

    def listen(self) -> None:
        assert self.subscription is not None
        while not self.stopping.is_set():
            try:
                messages = self.subscription.get(POLL)
            except Exception:  # the broker went away: the subscription reconnects or not
                logger.warning("remote control: broadcast read failed", exc_info=True)
                self.stopping.wait(1.0)
                continue
            for message in messages:
                try:
                    self.handle(json.loads(message.body))
                except Exception:  # a malformed request must not stop the listener
                    logger.exception("remote control: cannot handle %r", message.body[:200])

    def handle(self, request: Mapping[str, Any]) -> None:
        destination = request.get("destination")
        if destination and self.worker.hostname not in destination:
            return
        method, args = request.get("method"), dict(request.get("arguments") or {})
        if method == "revoke":
            ids = args.get("task_id")
            ids = [ids] if isinstance(ids, str) else list(ids or [])
            self.consumer.revoked.add({"task_id": ids, "at": time.time()})
            logger.info("Revoked %s", ", ".join(ids))
            if args.get("terminate"):
                for task_id in ids:
                    self.consumer.terminate(task_id, signal_number(args.get("signal")))
        elif method == "revoke_by_stamped_headers":
            headers = dict(args.get("headers") or {})
            self.consumer.revoked.add({"headers": headers, "at": time.time()})
            if args.get("terminate"):
                for job in list(self.consumer.running.values()):
                    if self.consumer.revoked.reason(job.id, job.message.headers):
                        self.consumer.terminate(job.id, signal_number(args.get("signal")))
