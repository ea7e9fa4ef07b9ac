"""Broadcast for ``redis://``: Redis PUBLISH/SUBSCRIBE, one channel per
exchange (``<prefix>bcast:<exchange>``), each message packed like a queued one,
except events (``celeryev``), which travel only in kombu's layout.

A subscription has a connection of its own (made like its transport's: same
server, credentials, TLS), so it outlives the transport's client and never
holds up the task path.  Redis keeps nothing for a channel
nobody listens to, and drops a subscriber that falls far behind (its
``client-output-buffer-limit pubsub``); either way those messages are lost.

Two exchanges are also Celery's (`kombu_compat`): a subscription to
``celery.pidbox`` also listens on kombu's channel of it, for the requests of
Celery clients; one to ``celeryev`` PSUBSCRIBEs kombu's event channels
*instead of* a channel of corekit's, so Celery's event tools and corekit's
read the same stream and every worker, Celery's or corekit's, is seen once.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Sequence

from corekit.events.dispatcher import EVENT_EXCHANGE
from corekit.plugins.redis.kombu_compat import (KOMBU_FANOUT, events_pattern, fanout_channel,
                                                from_envelope, routing_key_of)
from corekit.plugins.redis.transport import message_from, unpack
from corekit.messages import Message
from corekit.transport import (Subscription, broadcast_key_matches,
                               check_broadcast_binding)

logger = logging.getLogger("corekit.redis")

#: How long subscribing may wait for Redis to confirm every channel.
SUBSCRIBE_TIMEOUT = 10.0
#: The most messages one `get` returns; the rest wait for the next call.
MAX_BATCH = 1000


def channel(prefix: str, exchange: str) -> str:
    return f"{prefix}bcast:{exchange}"


def _own_client(client: Any) -> Any:
    """A client on a one-connection pool configured like *client*'s."""
    import redis

    pool = client.connection_pool
    return redis.Redis(connection_pool=redis.ConnectionPool(
        connection_class=pool.connection_class, max_connections=1, **pool.connection_kwargs))


class RedisSubscription(Subscription):
    """A redis-py PubSub on its own client (see the module docstring)."""

    def __init__(self, client: Any, prefix: str, exchanges: Sequence[str],
                 routing_key: str | None = None) -> None:
        check_broadcast_binding(exchanges, routing_key)
        self.exchanges = {channel(prefix, e).encode(): e
                          for e in exchanges if e != EVENT_EXCHANGE}
        #: kombu's channels of these exchanges, where Celery clients publish
        self.kombu = {fanout_channel(client, e).encode(): e
                      for e in exchanges if e in KOMBU_FANOUT}
        self.exchanges.update(self.kombu)
        #: kombu's pattern of the event channels, the only place events travel
        self.patterns = ({events_pattern(client).encode(): EVENT_EXCHANGE}
                         if EVENT_EXCHANGE in exchanges else {})
        self.routing_key = routing_key
        self.closed = False
        self._early: list[Message] = []
        self._client = _own_client(client)
        self._pubsub = self._client.pubsub()
        try:
            self._subscribe()
        except BaseException:
            self.close()
            raise

    def _subscribe(self) -> None:
        """(P)SUBSCRIBE and wait until Redis confirmed each channel and
        pattern: only then is every later publish sure to reach us."""
        if self.exchanges:
            self._pubsub.subscribe(*self.exchanges)
        if self.patterns:
            self._pubsub.psubscribe(*self.patterns)
        waiting = {*self.exchanges, *self.patterns}
        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Redis did not confirm the broadcast subscription")
            item = self._pubsub.get_message(timeout=left)
            if item is not None and item["type"] in ("subscribe", "psubscribe"):
                waiting.discard(item["channel"])
            elif item is not None:
                self._keep(item, self._early)

    def _keep(self, item: dict[str, Any], got: list[Message]) -> None:
        if item["type"] == "pmessage":
            message = self._unwrap(item, self.patterns[item["pattern"]],
                                   routing_key_of(item["channel"], item["pattern"]))
        elif item["type"] == "message" and item["channel"] in self.kombu:
            message = self._unwrap(item, self.kombu[item["channel"]], None)
        elif item["type"] == "message":
            message = message_from(unpack(item["data"]))
            message.exchange = self.exchanges[item["channel"]]
        else:
            return
        if message is not None and broadcast_key_matches(message.exchange, self.routing_key,
                                                         message.routing_key):
            got.append(message)

    @staticmethod
    def _unwrap(item: dict[str, Any], exchange: str, routing_key: str | None
                ) -> Message | None:
        """The message in a kombu envelope; None (logged) if malformed."""
        try:
            return from_envelope(item["data"], exchange, routing_key)
        except (ValueError, TypeError, AttributeError):
            logger.warning("Ignoring a malformed kombu message on %s: %r",
                           item["channel"], item["data"][:200])
            return None

    def _read(self, got: list[Message], timeout: float) -> bool:
        """Read one reply into *got*; False when nothing came in *timeout*."""
        item = self._pubsub.get_message(timeout=timeout)
        if item is None:
            return False
        self._keep(item, got)
        return True

    def get(self, timeout: float) -> list[Message]:
        if self.closed:
            return []
        got, self._early = self._early, []
        deadline = time.monotonic() + timeout
        while not got:
            self._read(got, max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                break
        while got and len(got) < MAX_BATCH and self._read(got, 0.0):
            pass
        return got

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._early = []
        try:
            self._pubsub.close()
        finally:
            self._client.connection_pool.disconnect()
