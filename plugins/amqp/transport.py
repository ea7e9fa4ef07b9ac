"""The ``amqp://`` transport: RabbitMQ through kombu and py-amqp.

URL forms: ``amqp://user:password@host:port/vhost`` and ``amqps://`` (TLS;
``broker_transport_options={"ssl": {...}}`` for certificates).  Queues are
declared from ``task_queues`` (`corekit.queues`): real exchanges (direct,
topic, fanout), bindings, routing keys, ``x-max-priority``.

Guarantees: every publish waits for publisher confirms, and is ``mandatory``
(a message no queue is bound for is an error, not a silent loss).  Prefetch
is ``basic.qos``.  A fetched message stays unacknowledged on the broker until
``ack``/``reject``; the broker hands it to another consumer only when this
one's connection dies, which AMQP heartbeats detect within about
``lease_timeout``; a consumer that comes back (it was paused past that)
drops the dead connection's deliveries, which the broker has requeued, and
its next fetch raises `LeaseLost` before it reconnects.  A long task never
makes its message come back while its worker is alive (with RabbitMQ's
``consumer_timeout`` raised or disabled for acks_late tasks that outlive it).  ETAs wait on the broker in the delay ladder
(`topology`), not in worker memory.

Beside it: the connections (`link`), the message format on the wire
(`envelope`), what was delivered and not yet handed out (`deliveries`), the
dead-letter queue (`deadletters`) and broadcast (`broadcast`).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Mapping, Sequence

from corekit.config import DEFAULTS
from corekit.plugins.amqp import deadletters, topology
from corekit.plugins.amqp.deliveries import TICK, Deliveries
from corekit.plugins.amqp.envelope import ETA, EXCHANGE, ROUTING_KEY, to_amqp
from corekit.plugins.amqp.link import Link, explain, heartbeat_seconds
from corekit.queues import Queues
from corekit.messages import Message
from corekit.transport import DeadLetter, Subscription, Transport

logger = logging.getLogger("corekit.amqp")


class AmqpTransport(Transport):
    """A RabbitMQ broker (see the module docstring)."""

    scheme = "amqp"
    tls_schemes = frozenset({"amqps"})
    default_url = "amqp://guest:guest@localhost:5672//"

    @classmethod
    def results_url(cls, url: str) -> str:
        """Results come back over the broker as messages: ``rpc://``."""
        return "rpc://"
    capabilities = frozenset({"delayed_delivery", "dead_letter", "lease", "multiprocess",
                              "exchanges", "broadcast"})

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(url, options)
        queues = self.options.get("queues")
        if queues is None:
            queues = Queues({**DEFAULTS,
                             "task_queue_max_priority": self.options.get("max_priority")})
        self.queues: Queues = queues
        if queues.max_priority is not None:
            self.capabilities = self.capabilities | {"priority"}
        self.confirm_timeout = float(self.options.get("confirm_timeout", 30.0))
        self._publisher: Link | None = None
        self._consumer: Link | None = None
        self._publishing = threading.RLock()
        self._consuming = threading.RLock()
        #: delivered, not handed out yet (under the consuming lock)
        self.deliveries = Deliveries()
        #: handed out by `fetch`, not settled yet
        self._held = 0

    # -- connections ------------------------------------------------------------------
    def _publisher_link(self) -> Link:
        if self._publisher is None or not self._publisher.alive:
            link = Link(self.url, self.options, heartbeat=0)
            link.confirm_select()
            self._publisher = link
        return self._publisher

    def _consumer_link(self) -> Link:
        if self._consumer is None or not self._consumer.alive:
            link = Link(self.url, self.options, heartbeat_seconds(self.lease_timeout))
            link.on_delivery = lambda raw: self.deliveries.add(link, raw)
            self._consumer = link
        return self._consumer

    def _drop_consumer(self) -> None:
        """Close the consuming connection; the broker requeues whatever it
        had delivered, so deliveries handed out and not settled are lost
        to this consumer (`lease_lapsed`)."""
        link, self._consumer = self._consumer, None
        if self._held:
            self.lease_lapsed = True
        self.deliveries.clear()
        self._held = 0
        if link is not None:
            link.close()

    def _drop_publisher(self) -> None:
        link, self._publisher = self._publisher, None
        if link is not None:
            link.close()

    def connect(self) -> None:
        with self._publishing:
            self._publisher_link()

    def close(self) -> None:
        with self._consuming:
            self._drop_consumer()
        with self._publishing:
            self._drop_publisher()

    # -- producing ----------------------------------------------------------------------
    def publish(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        with self._publishing:
            link = self._publisher_link()
            try:
                now = time.time()
                for m in messages:
                    exchange, routing_key, headers = self._destination(link, m, now)
                    link.channel.basic_publish(to_amqp(m, headers), exchange=exchange,
                                               routing_key=routing_key, mandatory=True)
                    link.published += 1
                link.wait_for_confirms(self.confirm_timeout)
            except Exception:
                self._drop_publisher()
                raise

    def _destination(self, link: Link, m: Message, now: float
                     ) -> tuple[str, str, dict[str, Any]]:
        """Where *m* goes on the broker, declaring what it needs on the way."""
        spec = (topology.DEAD_LETTER_SPEC if m.queue == topology.DEAD_LETTER_QUEUE
                else self.queues.get(m.queue))
        link.declare(spec)
        headers = dict(m.headers)
        if m.eta is not None and m.eta > now:
            link.declare_ladder_for(spec.name)
            headers.update({ETA: float(m.eta), EXCHANGE: m.exchange,
                            ROUTING_KEY: m.routing_key})
            delay_ms = round((m.eta - now) * 1000)
            return (topology.level_name(topology.LEVELS - 1),
                    topology.delay_routing_key(delay_ms, spec.name), headers)
        if m.exchange:
            return m.exchange, m.routing_key or spec.routing_key, headers
        return "", spec.name, headers

    # -- consuming ----------------------------------------------------------------------
    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Message]:
        deadline = time.monotonic() + timeout
        with self._consuming:
            if self.lease_lapsed:
                raise self.lost_lease()
            try:
                link = self._consumer_link()
                link.set_qos(self._held + max(limit, self.deliveries.waiting()))
                self._follow(link, queues)
                started = time.monotonic()
                link.drain_ready()
                link.tick()
                self.lease_renewed = started
                deliveries = self.deliveries
                while True:
                    deliveries.release_early()
                    self._bury_poison(link)
                    if deliveries.ready:
                        return self._take(limit)
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self._pause(link)
                        return []
                    link.tick()
                    link.drain(min(left, TICK, deliveries.next_early()))
            except Exception as exc:
                self._drop_consumer()
                raise ConnectionError(f"AMQP consumer: {explain(exc)}") from exc
            finally:
                self._redelay_too_early()

    def _pause(self, link: Link) -> None:
        """Stop consuming after a fetch found nothing: an idle instance must
        not keep messages that other consumers could run.  Anything that
        arrives while the consumers are cancelled waits for the next fetch."""
        for queue in list(link.consumers):
            link.cancel(queue)

    def _follow(self, link: Link, queues: Sequence[str]) -> None:
        """Consume exactly *queues*: cancel the others, giving back what
        they delivered that nobody has taken yet."""
        wanted = set(queues)
        for queue in [q for q in link.consumers if q not in wanted]:
            link.cancel(queue)
            mine = self.deliveries.take_queues([queue])
            if mine:
                self._settle(mine, True, count=False)
        for queue in queues:
            if queue not in link.consumers:
                link.declare(self.queues.get(queue))
                link.consume(queue)

    def _redelay_too_early(self) -> None:
        """Deliveries far from due go back to the ladder (then are acked)."""
        batch = self.deliveries.take_too_early()
        if batch:
            self.publish(batch)
            self._held += len(batch)
            self.ack(batch)

    def _bury_poison(self, link: Link) -> None:
        """Dead-letter the deliveries that cannot be taken as stored (never
        handed out); those of an older connection the broker has requeued."""
        poison = self.deliveries.take_poison()
        if poison:
            for message, reason in poison:
                if message.delivery_tag[0] == link.generation:
                    logger.error("Moved message %.100s to the dead-letter queue: %s",
                                 message.headers.get("id"), reason)
                    self.publish([deadletters.letter_for(message, reason)])
                    self._settle([message], None, count=False)

    def _take(self, limit: int) -> list[Message]:
        batch = self.deliveries.take(limit)
        self._held += len(batch)
        return batch

    def heartbeat(self) -> None:
        # A fetch in progress sends heartbeats itself; never wait behind it.
        if self._consuming.acquire(blocking=False):
            try:
                self._beat()
            finally:
                self._consuming.release()

    def renew_lease(self) -> None:
        with self._consuming:
            self._beat()
            if self.lease_lapsed:
                raise self.lost_lease()

    def _beat(self) -> None:
        """Heartbeat the consuming connection, if there is one.  Its death
        with deliveries out is a lapsed lease (reported by the next fetch);
        without, a connection error."""
        link = self._consumer
        if link is None or not link.alive:
            return
        started = time.monotonic()
        try:
            link.drain_ready()
            link.tick()
        except Exception:
            self._drop_consumer()
            if not self.lease_lapsed:
                raise
        else:
            self.lease_renewed = started

    def ack(self, messages: Sequence[Message]) -> None:
        with self._consuming:
            self._settle(messages, None)

    def reject(self, messages: Sequence[Message], requeue: bool) -> None:
        with self._consuming:
            self._settle(messages, requeue)

    def _settle(self, messages: Sequence[Message], requeue: bool | None, count: bool = True
                ) -> None:
        """Ack (``requeue=None``) or reject deliveries of the current
        connection; *count*: they had been handed out by `fetch`.  A delivery
        of a connection that is gone was requeued by the broker already."""
        link = self._consumer
        if link is None or not link.alive:
            return
        tags = [m.delivery_tag[1] for m in messages if m.delivery_tag[0] == link.generation]
        if count:
            self._held = max(0, self._held - len(tags))
        try:
            if requeue is None:
                link.ack(tags)
            else:
                link.reject(tags, requeue)
        except Exception as exc:  # the connection died: the broker requeues them all
            logger.warning("AMQP connection lost while acknowledging: %s", explain(exc))
            self._drop_consumer()

    # -- dead letters ------------------------------------------------------------------
    def dead_letter(self, message: Message, reason: str) -> None:
        self.publish([deadletters.letter_for(message, reason)])
        if message.delivery_tag is not None:
            self.ack([message])

    def _with_channel(self, work: Any) -> Any:
        """Run ``work(channel)`` on a fresh channel of the publisher's
        connection; closing it gives back whatever it left unacknowledged."""
        with self._publishing:
            link = self._publisher_link()
            channel = link.connection.channel()
            channel.auto_decode = False
            try:
                return work(channel)
            finally:
                try:
                    channel.close()
                except Exception:
                    self._drop_publisher()

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return [letter for _, letter in self._with_channel(deadletters.take_letters)][:limit]

    def replay_dead_letters(self, ids: Sequence[Any] | None = None) -> int:
        def replay(channel: Any) -> int:
            chosen = [(tag, letter) for tag, letter in deadletters.take_letters(channel)
                      if ids is None or letter.id in set(ids)]
            if chosen:
                self.publish([letter.message for _, letter in chosen])
                for tag, _ in chosen:
                    channel.basic_ack(tag)
            return len(chosen)

        return int(self._with_channel(replay))

    # -- broadcast ----------------------------------------------------------------------
    def publish_broadcast(self, exchange: str, messages: Sequence[Message]) -> None:
        from corekit.plugins.amqp import broadcast

        broadcast.publish(self, exchange, messages)

    def subscribe_broadcast(self, exchanges: Sequence[str], routing_key: str | None = None
                            ) -> Subscription:
        from corekit.plugins.amqp.broadcast import AmqpSubscription

        return AmqpSubscription(self, exchanges, routing_key)

    # -- management ---------------------------------------------------------------------
    def purge(self, queues: Sequence[str]) -> int:
        import amqp

        purged = 0
        with self._consuming:
            mine = (self.deliveries.take_queues(queues, early=False)
                    if self._consumer is not None else [])
            if mine:
                self._settle(mine, False, count=False)
                purged += len(mine)
        for queue in queues:
            try:
                purged += int(self._with_channel(lambda ch, q=queue: ch.queue_purge(q)) or 0)
            except amqp.exceptions.NotFound:
                pass
        return purged

    def queue_size(self, queue: str) -> int:
        import amqp

        try:
            _, count, _ = self._with_channel(lambda ch: ch.queue_declare(queue, passive=True))
        except amqp.exceptions.NotFound:
            count = 0
        with self._consuming:
            return int(count) + self.deliveries.ready_in(queue)
