"""One AMQP connection with one channel, opened through kombu (URL forms,
TLS, authentication) and driven with py-amqp directly on the hot path."""
from __future__ import annotations

import itertools
import logging
import math
import socket
import ssl
import time
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from corekit.plugins.amqp import frames, topology
from corekit.queues import QueueSpec

logger = logging.getLogger("corekit.amqp")

_generations = itertools.count(1)

#: What RabbitMQ says when a delivery stayed unacked past consumer_timeout.
CONSUMER_TIMEOUT_HINT = (
    "RabbitMQ closed the channel because a delivery stayed unacknowledged longer than its "
    "consumer_timeout (30 minutes by default). A task that runs longer with acks_late needs "
    "consumer_timeout raised or disabled on the broker (see the README, 'RabbitMQ').")


def heartbeat_seconds(lease_timeout: float) -> int:
    """The AMQP heartbeat for a lease: RabbitMQ drops a connection after two
    silent heartbeat periods, so half the lease, in whole seconds."""
    return max(1, math.ceil(lease_timeout / 2))


class ConfirmError(Exception):
    """The broker refused (nacked) or could not route a published message."""


class Link:
    """A connection and its channel.  ``generation`` tells deliveries of
    this link from those of an earlier one: after a reconnect, old delivery
    tags mean nothing, and the broker has already requeued those messages."""

    def __init__(self, url: str, options: Mapping[str, Any], heartbeat: int,
                 on_delivery: Callable[[Any], None] | None = None) -> None:
        import kombu

        self.generation = next(_generations)
        url, tls = tls_options(url, options.get("ssl"))
        self.kombu = kombu.Connection(url, heartbeat=heartbeat,
                                      connect_timeout=float(options.get("connect_timeout", 4)),
                                      ssl=tls,
                                      transport_options=dict(options.get("amqp_options") or {}))
        self.kombu.ensure_connection(max_retries=0)  # retrying is the caller's policy
        self.connection = self.kombu.connection
        # a delivery with unreadable properties must not break the connection
        self.connection.on_inbound_frame = frames.tolerant(self.connection.on_inbound_frame)
        self.channel = self.connection.channel()
        self.channel.auto_decode = False
        self.on_delivery = on_delivery
        self.declared: set[str] = set()
        self.bound_to_ladder: set[str] = set()
        self.ladder = False
        self.confirming = False
        self.published = 0
        self.confirmed = 0
        self._acked_above: set[int] = set()
        self.refused: list[str] = []
        self.qos = 0
        self.consumers: dict[str, str] = {}   # queue -> consumer tag
        self.queue_of: dict[str, str] = {}    # consumer tag -> queue
        self.unsettled: set[int] = set()      # delivery tags not yet acked or rejected
        self.alive = True

    # -- declarations ----------------------------------------------------------
    def declare(self, spec: QueueSpec) -> None:
        if spec.name not in self.declared:
            topology.declare_queue(self.channel, spec)
            self.declared.add(spec.name)

    def declare_ladder_for(self, queue: str) -> None:
        if not self.ladder:
            topology.declare_ladder(self.channel)
            self.ladder = True
        if queue not in self.bound_to_ladder:
            topology.bind_to_ladder(self.channel, queue)
            self.bound_to_ladder.add(queue)

    # -- publisher confirms ---------------------------------------------------
    def confirm_select(self) -> None:
        if not self.confirming:
            self.channel.events["basic_ack"].add(self._on_ack)
            self.channel.events["basic_nack"].add(self._on_nack)
            self.channel.events["basic_return"].add(self._on_return)
            self.channel.confirm_select()
            self.confirming = True

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        # ``confirmed``: every tag up to it is confirmed; single acks above it
        # may come out of order and wait in ``_acked_above``.
        if multiple:
            self.confirmed = max(self.confirmed, delivery_tag)
            self._acked_above = {t for t in self._acked_above if t > self.confirmed}
        else:
            self._acked_above.add(delivery_tag)
        while self.confirmed + 1 in self._acked_above:
            self.confirmed += 1
            self._acked_above.discard(self.confirmed)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self.refused.append(f"the broker refused message #{delivery_tag} (nack)")
        self._on_ack(delivery_tag, multiple)

    def _on_return(self, exc: Exception, exchange: str, routing_key: str, message: Any) -> None:
        self.refused.append(f"unroutable: no queue is bound to exchange {exchange!r} with "
                            f"routing key {routing_key!r} ({exc})")

    def wait_for_confirms(self, timeout: float) -> None:
        """Block until the broker confirmed everything published so far."""
        deadline = time.monotonic() + timeout
        while self.confirmed < self.published:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConfirmError(f"no publisher confirm from the broker within {timeout}s")
            self.drain(left)
        if self.refused:
            refused, self.refused = self.refused, []
            raise ConfirmError("; ".join(refused))

    # -- consuming --------------------------------------------------------------
    def set_qos(self, prefetch: int) -> None:
        """Let the broker push at most *prefetch* unacknowledged messages.
        Changed only when it must grow or halves, to save round trips."""
        if prefetch > self.qos or prefetch < self.qos // 2:
            self.channel.basic_qos(0, prefetch, True)  # channel-wide: changes apply at once
            self.qos = prefetch

    def consume(self, queue: str) -> None:
        if queue not in self.consumers:
            tag = self.channel.basic_consume(queue, callback=self.on_delivery, no_ack=False)
            self.consumers[queue], self.queue_of[tag] = tag, queue

    def ack(self, tags: list[int]) -> None:
        """Ack deliveries: one ``multiple`` ack covers every tag below the
        oldest delivery that stays unsettled, the rest go one by one."""
        if not tags:
            return
        done = set(tags)
        self.unsettled -= done
        oldest_open = min(self.unsettled, default=None)
        below = [t for t in done if oldest_open is None or t < oldest_open]
        if below:
            self.channel.basic_ack(max(below), multiple=True)
        for tag in done.difference(below):
            self.channel.basic_ack(tag)

    def reject(self, tags: list[int], requeue: bool) -> None:
        self.unsettled.difference_update(tags)
        for tag in tags:
            self.channel.basic_reject(tag, requeue)

    def cancel(self, queue: str) -> None:
        tag = self.consumers.pop(queue, None)
        if tag is not None:
            # synchronous: deliveries sent before the cancel-ok are handled on the way
            self.channel.basic_cancel(tag)
            self.queue_of.pop(tag, None)

    def drain(self, timeout: float) -> bool:
        """Read frames for up to *timeout* seconds; True if any arrived."""
        try:
            self.connection.drain_events(timeout=max(0.0, timeout))
        except socket.timeout:
            return False
        return True

    def drain_ready(self) -> None:
        """Read whatever has already arrived, without waiting."""
        while self.drain(0):
            pass

    def tick(self) -> None:
        """Send a heartbeat if one is due (py-amqp raises if the broker fell silent)."""
        self.connection.heartbeat_tick()

    def close(self) -> None:
        self.alive = False
        try:
            self.kombu.release()
        except Exception:  # a dead connection may fail to close; it is gone either way
            logger.debug("closing an AMQP connection failed", exc_info=True)


def tls_options(url: str, given: Any) -> tuple[str, Any]:
    """The URL without its ``ssl_*`` query options, and py-amqp's TLS
    settings: ``given`` (``broker_use_ssl``) as it is, else from the query.

    ``amqps://`` verifies the server's certificate against the system's CAs,
    or ``?ssl_ca_certs=PATH``, and checks its host name;
    ``?ssl_cert_reqs=none`` turns verification off (never in production)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    wanted = {key[4:]: value for key, value in query if key.startswith("ssl_")}
    url = urlunsplit(parts._replace(query=urlencode(
        [(key, value) for key, value in query if not key.startswith("ssl_")])))
    if given:
        if isinstance(given, Mapping) and "context" not in given:
            given = {"server_hostname": parts.hostname, **given}
        return url, given
    if parts.scheme != "amqps" and not wanted:
        return url, False
    if wanted.get("cert_reqs", "required").lower() in ("none", "cert_none"):
        return url, {"cert_reqs": ssl.CERT_NONE}
    return url, {"context": {"cafile": wanted.get("ca_certs"), "check_hostname": True},
                 "server_hostname": parts.hostname}


def explain(exc: BaseException) -> str:
    """The broker's reason, with advice where corekit knows the cause."""
    text = str(exc)
    if "PRECONDITION_FAILED" in text and "timed out" in text:
        return f"{text}: {CONSUMER_TIMEOUT_HINT}"
    return text
