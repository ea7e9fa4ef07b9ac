"""The worker's side of remote control: Celery's pidbox.

At start the control step subscribes to the ``celery.pidbox`` broadcast
(first, so nothing is missed), then loads the revocations the result backend
keeps, so a worker that starts later honours revokes made before it ran.
From then on a thread of its own reads requests (Celery's shape: method,
arguments, destination / pattern + matcher, reply_to, ticket; see
`corekit.pidbox`), runs the commands meant for this worker
(`corekit.worker.commands`: built-in and from plugins) and publishes each
reply on ``reply.celery.pidbox`` with the asker's routing key.  It publishes
with a transport of its own, since the consumer's belongs to the consumer's
thread; nothing here runs on the consumer's loop.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Mapping

from corekit.bootsteps import Step
from corekit.events.dispatcher import LamportClock
from corekit.pidbox import PIDBOX, is_expired, is_for, reply_message
from corekit.worker.commands import Command, ControlContext, commands_for, nok
from corekit.worker.steps import BackendStep, ConsumerStep

if TYPE_CHECKING:
    from corekit.messages import Message
    from corekit.transport import Subscription, Transport
    from corekit.worker import Worker
    from corekit.worker.consumer import Consumer

logger = logging.getLogger("corekit.worker")

POLL = 0.5
#: seconds between tries to read broadcasts while the broker is away
RETRY_EVERY = 1.0


class ControlStep(Step):
    """Revocations from the result backend, and remote-control commands
    from live broadcasts."""

    requires = (BackendStep, ConsumerStep)

    def create(self, worker: Worker) -> None:
        self.worker = worker
        self.consumer: Consumer = worker.blueprint[ConsumerStep].consumer
        self.commands: dict[str, Command] = commands_for(worker.app)
        self.tracker = self.consumer.tracker
        self.clock = LamportClock()
        self.started_at = time.time()
        self.stopping = threading.Event()
        self.transport: Transport | None = None
        self.subscription: Subscription | None = None
        self.thread = threading.Thread(target=self.listen, name="corekit-control", daemon=True)

    def start(self, worker: Worker) -> None:
        self.started_at = time.time()
        self.transport = transport = worker.app.connection()
        if "broadcast" in transport.capabilities:
            self.subscription = worker.startup.call(
                "broker", transport.describe(), lambda: transport.subscribe_broadcast([PIDBOX]),
                reset=transport.close)
        else:
            logger.warning("%s has no broadcast: no remote control, and revokes reach this "
                           "worker only when it starts", self.transport.describe())
        self.load_kept()
        if self.subscription is not None:
            self.thread.start()

    def stop(self, worker: Worker) -> None:
        self.stopping.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join()
        if self.subscription is not None:
            self.subscription.close()
        if self.transport is not None:
            self.transport.close()

    def load_kept(self) -> None:
        revoked = self.consumer.revoked
        backend = self.worker.blueprint[BackendStep].backend
        try:
            entries = self.worker.startup.call(
                "result backend", backend.describe(),
                lambda: backend.revocations(time.time() - revoked.expires))
        except NotImplementedError as exc:
            logger.info("%s: revokes made before this worker started are not known", exc)
            return
        for entry in entries:
            revoked.add(entry)
        if entries:
            logger.info("Honouring %d revocation(s) made before this worker started",
                        len(entries))

    # -- requests -----------------------------------------------------------------
    def listen(self) -> None:
        assert self.subscription is not None
        failures = 0
        while not self.stopping.is_set():
            try:
                messages = self.subscription.get(POLL)
            except Exception as exc:  # the broker went away: the subscription reconnects
                failures += 1
                self._read_failed(exc, failures)
                self.stopping.wait(RETRY_EVERY)
                continue
            if failures:
                logger.warning("Remote control: the broker is back after %d failed "
                               "attempt(s)", failures)
                failures = 0
            for message in messages:
                try:
                    self.handle(message)
                except Exception:  # a malformed request must not stop the listener
                    logger.exception("remote control: cannot handle %r", message.body[:200])

    def _read_failed(self, exc: Exception, failures: int) -> None:
        """An outage is told once, on one line (each attempt's traceback at
        DEBUG; an error that is not the connection's keeps its traceback)."""
        from corekit.worker.startup import is_connection_error, one_line_reason

        if failures == 1:
            where = self.transport.describe() if self.transport is not None else "?"
            logger.warning("Remote control: cannot read from the broker at %s: %s; trying "
                           "again every %g s", where, one_line_reason(exc), RETRY_EVERY,
                           exc_info=None if is_connection_error(exc) else exc)
        logger.debug("Remote control: reading broadcasts failed (attempt %d)", failures,
                     exc_info=exc)

    def handle(self, message: Message) -> Any:
        """Run the request in *message* if it is for this worker and still
        current; reply when it asks for one.  Returns the reply value (None
        when it was not run)."""
        try:
            request = json.loads(message.body)
        except ValueError:
            logger.warning("remote control: request is not JSON: %r", message.body[:200])
            return None
        if not isinstance(request, dict):
            return None
        headers = message.headers if isinstance(message.headers, dict) else {}
        self.clock.adjust(headers.get("clock") or 0)
        if is_expired(headers):
            logger.debug("remote control: %r expired, ignored", request.get("method"))
            return None
        try:
            if not is_for(request, self.worker.hostname):
                return None
        except ValueError as exc:  # an unknown matcher
            logger.warning("remote control: %s: request ignored", exc)
            return None
        ctx = ControlContext(worker=self.worker, consumer=self.consumer,
                             hostname=self.worker.hostname, app=self.worker.app, step=self)
        reply = self.dispatch(ctx, request.get("method"), request.get("arguments"))
        self.reply(reply, request)
        for then in ctx.after_reply:
            then()
        return reply

    def dispatch(self, ctx: ControlContext, method: Any, arguments: Any) -> Any:
        """The reply of *method*: its handler's answer, or ``{"error": ...}``."""
        command = self.commands.get(method) if isinstance(method, str) else None
        if command is None:
            logger.warning("remote control: no such command %r", method)
            return nok(f"No such command: {method}")
        logger.debug("remote control: %s(%r)", method, arguments)
        try:
            return command.handler(ctx, **dict(arguments or {}))
        except Exception as exc:
            logger.exception("remote control: %s failed", method)
            return nok(repr(exc))

    def reply(self, value: Any, request: Mapping[str, Any]) -> None:
        """Publish ``{hostname: value}`` where *request* asked, if it did."""
        hostname = self.worker.hostname
        try:
            message = reply_message(hostname, value, request, self.clock.forward())
        except (TypeError, ValueError) as exc:
            message = reply_message(hostname, nok(f"the reply cannot be sent as JSON: {exc}"),
                                    request, self.clock.forward())
        if message is None:
            return
        assert self.transport is not None
        try:
            self.transport.publish_broadcast(message.exchange, [message])
        except Exception:
            logger.warning("remote control: cannot publish the reply to %r",
                           request.get("reply_to"), exc_info=True)
