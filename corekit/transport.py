"""The transport contract: how the kernel talks to a broker.

A transport is batch-first: it publishes many messages in one round trip,
hands consumers batches, and acks in batches.  How it stores a message
(tables, keys, envelopes) is its own affair.
"""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

from corekit.exceptions import LeaseLost
from corekit.messages import Message
from corekit.queues import topic_matches

DEAD_LETTER_QUEUE = "corekit.dlq"


@dataclass(slots=True)
class DeadLetter:
    """A message that could not be processed, with the reason why."""

    id: Any
    message: Message
    reason: str
    failed_at: float = field(default_factory=time.time)


def mask_url(url: str) -> str:
    """The URL with its passwords replaced by ``**``, for logs and banners:
    the one in the user info and any query option named like a password
    (redis-py takes ``?password=`` and ``?ssl_password=`` too)."""
    parts = urlsplit(url)
    query = _mask_query(parts.query)
    if parts.password is None and query == parts.query:
        return url
    if parts.password is not None:
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}:**@{f'[{host}]' if ':' in host else host}"
        if parts.port:
            netloc += f":{parts.port}"
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts._replace(query=query))


def _mask_query(query: str) -> str:
    fields = []
    for field in query.split("&"):
        name, sep, _ = field.partition("=")
        fields.append(f"{name}=**" if sep and "password" in name.lower() else field)
    return "&".join(fields)


#: The broadcast exchanges Celery uses, with the exchange type it declares
#: them with: remote-control requests, their replies (routing key = the
#: asking client's node id) and events (routing key = the event type with
#: ``.`` for ``-``).  Any other broadcast exchange is a fanout.
BROADCAST_EXCHANGE_TYPES: Mapping[str, str] = {
    "celery.pidbox": "fanout", "reply.celery.pidbox": "direct", "celeryev": "topic"}


def broadcast_exchange_type(exchange: str) -> str:
    """``"fanout"``, ``"direct"`` or ``"topic"``, as `BROADCAST_EXCHANGE_TYPES` says."""
    return BROADCAST_EXCHANGE_TYPES.get(exchange, "fanout")


def check_broadcast_binding(exchanges: Sequence[str], routing_key: str | None) -> None:
    """The ValueError `Transport.subscribe_broadcast` raises for no exchange,
    or for a direct exchange without a routing key."""
    if not exchanges:
        raise ValueError("subscribe_broadcast needs at least one exchange")
    if routing_key is None:
        direct = [e for e in exchanges if broadcast_exchange_type(e) == "direct"]
        if direct:
            raise ValueError(f"subscribing to the direct exchange {direct[0]!r} needs a "
                             f"routing_key")


def broadcast_key_matches(exchange: str, binding: str | None, routing_key: str) -> bool:
    """Whether a message published on *exchange* with *routing_key* reaches a
    subscription bound with *binding* (None: everything): topic patterns
    (``*`` one word, ``#`` any) on a topic exchange, equality elsewhere."""
    if binding is None:
        return True
    if broadcast_exchange_type(exchange) == "topic":
        return topic_matches(binding, routing_key)
    return binding == routing_key


class Subscription:
    """A live subscription to broadcast exchanges, from
    `Transport.subscribe_broadcast`; a context manager that closes it.

    Each delivered message is this subscriber's own copy, with ``body``,
    ``headers``, ``properties``, ``content_type``, ``content_encoding`` and
    ``routing_key`` as published, ``exchange`` set to the broadcast exchange
    it came through and ``delivery_tag`` None.  Nothing is acked.  Use one
    subscription from one thread at a time.
    """

    def get(self, timeout: float) -> list[Message]:
        """Messages that arrived since the last call, in publish order,
        waiting up to *timeout* seconds for the first; ``[]`` when none
        came in time.  A large backlog may take several calls.  After
        `close`, return ``[]`` at once."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop receiving and release the connection; idempotent."""

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Transport:
    """A broker connection.  Subclasses are registered by URL scheme through
    the ``corekit_register_transports`` hook.

    Capabilities (``capabilities``) say what the transport can do; the kernel
    works around a missing one where it can:

    - ``"delayed_delivery"``: honours ``Message.eta`` broker-side; without it
      the worker keeps not-yet-due messages in its timer.
    - ``"lease"``: a fetched message stays owned by this consumer until acked
      or rejected and comes back only when the consumer's heartbeat lapses.
    - ``"priority"``: higher ``Message.priority`` is delivered first.
    - ``"dead_letter"``: `dead_letter` keeps messages for `dead_letters` and
      `replay_dead_letters`.
    - ``"multiprocess"``: several processes may share one broker.
    - ``"delayed_counted"``: a message waiting for its ETA counts in its
      queue's `queue_size` and goes with it in `purge` (AMQP's delay ladder
      is shared by all queues, so there it does not).
    - ``"queue_order"``: `fetch` from several queues takes earlier queues
      first (a push-based broker such as AMQP interleaves them).
    - ``"rate_limit"``: `take_tokens` keeps token buckets on the broker, for
      rate limits shared by every worker.
    - ``"exchanges"``: the broker routes by ``exchange`` and ``routing_key``
      itself; elsewhere the kernel picks the queue (`corekit.queues`).
    - ``"broadcast"``: `publish_broadcast` and `subscribe_broadcast` work.

    Leases belong to one transport *instance* (``consumer_id``): the object
    that fetched a message must be the one that acks, rejects and heartbeats
    for it.  Every consumer of one broker must use the same
    ``lease_timeout``, since whoever recovers lapsed leases judges by its own.
    Leases are timed by one clock, the broker's (Redis ``TIME``, SQLite's
    own clock, RabbitMQ's heartbeat timer), never by a consumer's
    ``time.time()``: a consumer whose clock is off can neither take a live
    lease nor lose its own.

    A lease that lapsed stays lapsed.  A consumer that comes back (it was
    paused, or cut off from the broker) finds that its messages were given
    back to their queues and may be running elsewhere: its `heartbeat`
    does not take them back, its acks and rejects of them are no-ops, and
    its next `fetch`, `ack_and_fetch` or `renew_lease` raises `LeaseLost`,
    once; the transport then consumes under a fresh lease.
    """

    scheme: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: URL schemes under which this transport connects over TLS (remote
    #: control's ``broker`` info reports ``ssl`` from it).
    tls_schemes: ClassVar[frozenset[str]] = frozenset()
    #: The broker URL ``--plugin NAME`` means when no broker is configured
    #: (a local server on its usual port); "" if the transport has none.
    default_url: ClassVar[str] = ""

    @classmethod
    def results_url(cls, url: str) -> str | None:
        """Where results go when the broker is *url* and no result backend
        is set: by default the same URL (its plugin's result backend), None
        for the embedded default."""
        return url

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        self.options = dict(options or {})
        self.consumer_id = uuid.uuid4().hex
        self.heartbeat_interval = float(self.options.get("heartbeat", 2.0))
        self.lease_timeout = float(self.options.get("lease_timeout", 15.0))
        #: `time.monotonic()` before the last call in which the broker
        #: confirmed this consumer's lease (a fetch or a heartbeat); 0.0 before any
        self.lease_renewed = 0.0
        #: set when a `heartbeat` found the lease lapsed, until the `LeaseLost` it means is raised
        self.lease_lapsed = False
        #: held while the consumer id is read for a heartbeat or replaced
        self.lease_lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------
    def connect(self) -> None:
        """Open the connection; idempotent.  Other methods may call it lazily."""

    def close(self) -> None:
        """Release the connection.  Unacked messages are not acked by closing."""

    # -- producing --------------------------------------------------------
    def publish(self, messages: Sequence[Message]) -> None:
        """Publish one or many messages in as few round trips as possible.
        A queue that does not exist is created."""
        raise NotImplementedError

    # -- consuming --------------------------------------------------------
    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Message]:
        """Return up to *limit* due messages from *queues* (earlier queues and
        higher priorities first), waiting up to *timeout* seconds for the
        first.  Every returned message is owned by this consumer until
        `ack` or `reject`; an empty list means nothing arrived in time.

        Raises `LeaseLost`, fetching nothing, when this consumer's lease
        lapsed since it was last renewed (found now or by a `heartbeat`);
        the transport has then dropped the lapsed lease (`new_lease`) and
        the next call fetches under a fresh one."""
        raise NotImplementedError

    def consume(self, queues: Sequence[str], prefetch: int, timeout: float = 1.0
                ) -> Iterator[list[Message]]:
        """Yield batches forever (empty batches on idle timeouts)."""
        while True:
            yield self.fetch(queues, prefetch, timeout)

    def ack(self, messages: Sequence[Message]) -> None:
        """Forget these delivered messages for good.  Those this consumer no
        longer owns (its lease lapsed: they went back to their queue, and
        may be another consumer's now) are left alone."""
        raise NotImplementedError

    def ack_and_fetch(self, acks: Sequence[Message], queues: Sequence[str], limit: int,
                      timeout: float) -> list[Message]:
        """`ack` *acks*, then `fetch`: the worker's loop does both each turn,
        so a transport that can do them in one round trip overrides this.
        If it raises, the acks may or may not have been made (acking again
        is harmless); with `LeaseLost`, none was (none was this consumer's)."""
        if acks:
            self.ack(acks)
        return self.fetch(queues, limit, timeout)

    def reject(self, messages: Sequence[Message], requeue: bool) -> None:
        """Give messages back to their queue (``requeue=True``) or drop them.
        A message whose lease has lapsed (and may now be another consumer's)
        is left alone."""
        raise NotImplementedError

    def heartbeat(self) -> None:
        """Tell the broker this consumer is alive, renewing its leases
        (and `lease_renewed`).  Called every ``heartbeat_interval`` seconds
        by the worker, from a thread of its own.  A heartbeat that finds the
        lease lapsed does not take it back: it sets `lease_lapsed`, for the
        consumer's next call to raise `LeaseLost`; it never raises that itself."""

    def renew_lease(self) -> None:
        """Renew the lease now, as `heartbeat` does, and raise `LeaseLost`
        if it had lapsed.  The worker calls it before it starts a job it
        fetched while its lease was last confirmed more than half a lease
        ago (the process was paused, say), so it never starts work the
        broker gave to someone else."""
        self.heartbeat()
        if self.lease_lapsed:
            raise self.lost_lease()

    def lost_lease(self) -> LeaseLost:
        """For implementations that found the lease lapsed: drop it (a new
        ``consumer_id``, then `new_lease`) and return the `LeaseLost` to raise."""
        with self.lease_lock:
            self.lease_lapsed = False
            self.lease_renewed = 0.0
            self.consumer_id = uuid.uuid4().hex
            self.new_lease()
        return LeaseLost(
            f"this consumer's lease lapsed: the broker heard nothing from it for more than "
            f"lease_timeout ({self.lease_timeout:g} s) and gave its unacked messages back to "
            f"their queues")

    def new_lease(self) -> None:
        """Forget what the transport kept of the lease `lost_lease` dropped
        (a registration flag, say); called with `lease_lock` held."""

    # -- dead letters -----------------------------------------------------
    def dead_letter(self, message: Message, reason: str) -> None:
        """Move a delivered message out of its queue into the dead-letter
        queue with *reason*; this acks the original delivery."""
        raise NotImplementedError

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest *limit* dead letters."""
        raise NotImplementedError

    def replay_dead_letters(self, ids: Sequence[Any] | None = None) -> int:
        """Put dead letters (all, or those in *ids*) back on their queue;
        return how many."""
        raise NotImplementedError

    # -- broadcast --------------------------------------------------------
    def publish_broadcast(self, exchange: str, messages: Sequence[Message]) -> None:
        """Fan a copy of each message out to every subscription currently
        subscribed to *exchange*, in as few round trips as possible.  With no
        subscriber the messages are dropped: pub/sub, nothing is kept for
        later.  ``routing_key`` travels with each message for subscribers
        to filter on; ``queue``, ``eta`` and ``priority`` mean nothing here."""
        raise NotImplementedError(f"{self.scheme}:// has no broadcast")

    def subscribe_broadcast(self, exchanges: Sequence[str], routing_key: str | None = None
                            ) -> Subscription:
        """A new `Subscription` to one or more *exchanges*.  It sees only
        messages published after this call returned, and lives until its own
        `Subscription.close`, whatever happens to this transport.

        Without *routing_key* it gets every message published on those
        exchanges; with one, only those whose routing key matches it
        (`broadcast_key_matches`: a topic pattern on a topic exchange such
        as ``celeryev``, equality elsewhere).  Each exchange has the type
        `BROADCAST_EXCHANGE_TYPES` gives it, so a broker with real exchanges
        declares them the way Celery does.  ValueError for no exchange, or a
        direct exchange (``reply.celery.pidbox``) without a routing key
        (`check_broadcast_binding`)."""
        raise NotImplementedError(f"{self.scheme}:// has no broadcast")

    # -- rate limits ------------------------------------------------------
    def take_tokens(self, key: str, rate: float, capacity: float, wanted: int
                    ) -> tuple[int, float]:
        """Take up to *wanted* tokens from the broker's bucket *key*, which
        refills at *rate* tokens a second up to *capacity* (full when new),
        atomically for every worker: ``(granted, seconds until the next
        token)``."""
        raise NotImplementedError(f"{self.scheme}:// keeps no rate limits")

    # -- management -------------------------------------------------------
    def purge(self, queues: Sequence[str]) -> int:
        """Delete every waiting message in *queues*; return how many."""
        raise NotImplementedError

    def queue_size(self, queue: str) -> int:
        """Messages waiting in *queue* (due or not, not counting unacked)."""
        raise NotImplementedError

    def describe(self) -> str:
        """The URL for banners and logs, password masked."""
        return mask_url(self.url)
