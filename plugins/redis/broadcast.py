"""Broadcast for ``redis://``: Redis PUBLISH/SUBSCRIBE, one channel per
exchange (``<prefix>bcast:<exchange>``), each message packed like a queued one.

A subscription has a connection of its own (made like its transport's: same
server, credentials, TLS), so it outlives the transport's client and never
holds up the task path.  Redis keeps nothing for a channel
nobody listens to, and drops a subscriber that falls far behind (its
``client-output-buffer-limit pubsub``); either way those messages are lost.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

from corekit.plugins.redis.transport import message_from, unpack
from corekit.transport import Message, Subscription

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

    def __init__(self, client: Any, prefix: str, exchanges: Sequence[str]) -> None:
        if not exchanges:
            raise ValueError("subscribe_broadcast needs at least one exchange")
        self.exchanges = {channel(prefix, e).encode(): e for e in exchanges}
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
        """SUBSCRIBE and wait until Redis confirmed each channel: only then
        is every later publish sure to reach us."""
        self._pubsub.subscribe(*self.exchanges)
        waiting = set(self.exchanges)
        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Redis did not confirm the broadcast subscription")
            item = self._pubsub.get_message(timeout=left)
            if item is not None and item["type"] == "subscribe":
                waiting.discard(item["channel"])
            elif item is not None:
                self._keep(item, self._early)

    def _keep(self, item: dict[str, Any], got: list[Message]) -> None:
        if item["type"] == "message":
            message = message_from(unpack(item["data"]))
            message.exchange = self.exchanges[item["channel"]]
            got.append(message)

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
