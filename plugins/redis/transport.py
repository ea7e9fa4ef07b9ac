"""The ``redis://`` transport: native, atomic steps in Lua (``lua/``).

URL forms: ``redis://[:password@]host[:port][/db]``, ``rediss://`` (TLS) and
``redis+socket:///path/to/redis.sock``.  Option ``prefix`` (default
``corekit:``) namespaces every key.

Layout, under the prefix: ``seq`` (ids), ``msg`` (id -> msgpack envelope),
``route`` (id -> queue and priority), ``q:<queue>`` (sorted set: priority,
then arrival), ``delayed:<queue>`` (sorted set by ETA), ``owned:<consumer>``
(ids a consumer holds), ``consumers`` (sorted set of last heartbeats),
``redelivered``, ``dead`` and ``dead:ids`` (dead letters); broadcasts go
over Pub/Sub channels ``bcast:<exchange>`` (see `broadcast`), and remote
control also speaks kombu's layout, for Celery's tools; events (``celeryev``)
speak only kombu's, unprefixed ``/{db}.celeryev/<routing key>`` (see
`kombu_compat`).

Guarantees: a claim moves ids into the consumer's owned set in the same Lua
step that pops them; a message comes back only when its consumer's heartbeat
lapses (``lease_timeout``), never because a task ran long; ETAs wait in
Redis, not in worker memory.  Leases are timed by Redis's clock (``TIME`` in
the scripts): heartbeats, fetches and recovery never use a client's.  A
lapsed consumer is not taken back by its heartbeat or fetch (``ZADD XX``):
its fetch raises `LeaseLost` and it starts over under a new id.
"""
from __future__ import annotations

import itertools
import threading
import time
from typing import Any, Mapping, Sequence

import msgpack

from corekit.events.dispatcher import EVENT_EXCHANGE
from corekit.pidbox import REPLY_PIDBOX
from corekit.plugins.redis.client import Lane, connect, script
from corekit.plugins.redis.envelope import RAW, bury, decode_claimed, letter
from corekit.messages import Message
from corekit.transport import DeadLetter, Subscription, Transport

#: shorter waits sleep (BLPOP's timeout has millisecond precision at best)
MIN_WAIT = 0.005
RECOVER_EVERY = 1.0
FIELDS = ("headers", "properties", "content_type", "content_encoding", "queue", "exchange",
          "routing_key", "priority")


def pack(message: Message, **extra: Any) -> bytes:
    record = {f: getattr(message, f) for f in FIELDS}
    record["body"] = bytes(message.body)
    record.update(extra)
    return msgpack.packb(record, use_bin_type=True, default=str)


def unpack(data: bytes) -> dict[str, Any]:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def message_from(record: Mapping[str, Any], tag: Any = None, redelivered: bool = False
                 ) -> Message:
    return Message(body=record["body"], delivery_tag=tag, redelivered=redelivered,
                   **{f: record[f] for f in FIELDS})


class RedisTransport(Transport):
    """A broker in Redis (see the module docstring)."""

    scheme = "redis"
    tls_schemes = frozenset({"rediss"})
    default_url = "redis://localhost:6379/0"
    capabilities = frozenset({"delayed_delivery", "delayed_counted", "priority",
                              "queue_order", "dead_letter", "lease", "multiprocess",
                              "broadcast", "rate_limit"})

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(url, options)
        self.prefix = str(self.options.get("prefix", "corekit:"))
        self._client: Any = None
        self._lane: Lane | None = None
        self._scripts: dict[str, Any] = {}
        self._recovered_at = float("-inf")  # monotonic
        self._lock = threading.Lock()
        self._claims = itertools.count()  # claim tokens: this consumer's id and a number
        self._last_claim = ""    # the token of the last fetch whose reply arrived
        self._lost_claim = ""    # the token of a fetch whose reply was lost
        self._registered = False  # whether the broker has seen this consumer id

    @property
    def client(self) -> Any:
        # Locked: the consumer and heartbeat threads may both make the first
        # call, and redis-py closes a collected client's pool under the other.
        with self._lock:
            if self._client is None:
                client = connect(self.url)
                self._lane = Lane(client)
                self._scripts = {name: script(self._lane, name)
                                 for name in ("publish", "fetch", "reclaim", "settle", "recover",
                                              "renew", "purge", "ratelimit")}
                self._client = client
            return self._client

    def _run(self, name: str, args: Sequence[Any]) -> Any:
        self.client  # noqa: B018 - connects and loads the scripts
        return self._scripts[name](keys=[], args=[self.prefix, *args])

    def connect(self) -> None:
        self.client.ping()

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            lane, self._lane = self._lane, None
        if lane is not None:
            lane.close()
        if client is not None:
            client.close()

    # -- producing ----------------------------------------------------------------
    def publish(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        self._run("publish", self._publish_args(messages))

    def queue_publish(self, pipe: Any, messages: Sequence[Message]) -> None:
        """Queue the publish of *messages* in *pipe*, a redis-py pipeline in
        MULTI on this transport's server and database, so the caller's own
        commands and the publish commit together (the Redis schedule store's
        ``fire``).  EVAL with the script's text, not EVALSHA: a NOSCRIPT
        error inside EXEC would not undo the caller's commands."""
        if messages:
            self.client  # noqa: B018 - connects and loads the scripts
            pipe.eval(self._scripts["publish"].source, 0, self.prefix,
                      *self._publish_args(messages))

    @staticmethod
    def _publish_args(messages: Sequence[Message]) -> list[Any]:
        """``publish.lua``'s arguments after the prefix."""
        now = time.time()
        args: list[Any] = []
        for m in messages:
            due = m.eta is None or m.eta <= now
            args += [m.queue, max(0, min(9, int(m.priority or 0))),
                     "" if due else repr(m.eta), pack(m)]
        return args

    # -- consuming ----------------------------------------------------------------
    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Message]:
        return self.ack_and_fetch((), queues, limit, timeout)

    def ack_and_fetch(self, acks: Sequence[Message], queues: Sequence[str], limit: int,
                      timeout: float) -> list[Message]:
        """One script acks *acks* and claims what is due.  With nothing due,
        wait on the queues' wake-up lists (BLPOP) until a publish, a requeue
        or the earliest ETA of these queues, not polling."""
        if self.lease_lapsed:  # a heartbeat found it so
            raise self.lost_lease()
        if self._lost_claim:
            got = self._decode(self._run("reclaim", [self.consumer_id, self._lost_claim]))
            self._lost_claim = ""
            if got:
                if acks:
                    self.ack(acks)
                return got
        deadline = time.monotonic() + timeout
        ack_ids = [m.delivery_tag for m in acks]
        while True:
            started = time.monotonic()
            if started - self._recovered_at >= min(RECOVER_EVERY, self.lease_timeout / 2):
                self._recovered_at = started
                self._run("recover", [repr(self.lease_timeout)])
            token = f"{self.consumer_id}.{next(self._claims)}"
            registered = self._registered
            try:
                raw = self._run("fetch", [self.consumer_id, repr(time.time()), limit, token,
                                          self._last_claim, "0" if registered else "1",
                                          len(ack_ids), *ack_ids, *queues])
            except Exception:  # the claim may have happened: reclaim it next time
                self._lost_claim = token
                raise
            if len(raw) == 1:  # {'lapsed'}: nothing was acked or claimed
                raise self.lost_lease()
            self.lease_renewed = started
            if not registered:
                self._registered = True
            ack_ids = []
            if len(raw) != 2 and raw:
                self._last_claim = token
                try:
                    got = self._decode(raw)
                except Exception:  # burying poison failed: take the batch back next time
                    self._lost_claim = token
                    raise
                if got:
                    return got
                continue  # every one was poison, now dead-lettered: look again
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            if raw:  # the earliest ETA among these queues
                left = min(left, max(0.0, float(raw[1]) - time.time()))
            # lapsed leases are still recovered while idle
            left = min(left, RECOVER_EVERY, self.lease_timeout / 2)
            if left < MIN_WAIT:
                time.sleep(left)
            else:
                self.client.blpop([self.prefix + "wake:" + q for q in queues], timeout=left)

    def _decode(self, raw: Sequence[Any]) -> list[Message]:
        """Each claimed envelope on its own: one that is no message is
        dead-lettered raw (see `envelope`), the others delivered."""
        got, bad = decode_claimed(raw)
        if bad:
            bury(self.client, self.prefix, self.consumer_id, bad)
        return got

    def heartbeat(self) -> None:
        with self.lease_lock:  # the consumer's thread may be replacing a lapsed lease
            started, registered = time.monotonic(), self._registered
            if self._run("renew", [self.consumer_id, "0" if registered else "1"]):
                self.lease_renewed = started
                self._registered = True
            else:
                self.lease_lapsed = True

    def new_lease(self) -> None:
        self._registered = False

    def ack(self, messages: Sequence[Message]) -> None:
        self._settle("ack", messages)

    def reject(self, messages: Sequence[Message], requeue: bool) -> None:
        self._settle("requeue" if requeue else "drop", messages)

    def _settle(self, mode: str, messages: Sequence[Message]) -> None:
        if messages:
            self._run("settle", [self.consumer_id, mode, *(m.delivery_tag for m in messages)])

    # -- dead letters -------------------------------------------------------------
    def dead_letter(self, message: Message, reason: str) -> None:
        p, tag = self.prefix, message.delivery_tag
        dead_id = self.client.incr(p + "seq")
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(p + "dead", dead_id, pack(message, reason=reason, failed_at=time.time()))
        pipe.zadd(p + "dead:ids", {dead_id: dead_id})
        if tag is not None:
            pipe.srem(p + "owned:" + self.consumer_id, tag)
            pipe.hdel(p + "msg", tag)
            pipe.hdel(p + "route", tag)
            pipe.hdel(p + "redelivered", tag)
        pipe.execute()

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        ids = self.client.zrange(self.prefix + "dead:ids", 0, limit - 1)
        if not ids:
            return []
        records = self.client.hmget(self.prefix + "dead", ids)
        return [letter(dead_id, data) for dead_id, data in zip(ids, records) if data]

    def replay_dead_letters(self, ids: Sequence[Any] | None = None) -> int:
        letters = self.dead_letters(10**9)
        if ids is not None:
            wanted = {int(i) for i in ids}
            letters = [d for d in letters if d.id in wanted]
        if not letters:
            return 0
        self.publish([d.message for d in letters if d.message.content_type != RAW])
        raw = [(d.message.queue, d.message.priority, "", d.message.body)
               for d in letters if d.message.content_type == RAW]
        if raw:  # an envelope kept as it was stored goes back as it was
            self._run("publish", [arg for item in raw for arg in item])
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(self.prefix + "dead", *(d.id for d in letters))
        pipe.zrem(self.prefix + "dead:ids", *(d.id for d in letters))
        pipe.execute()
        return len(letters)

    # -- broadcast ----------------------------------------------------------------
    def publish_broadcast(self, exchange: str, messages: Sequence[Message]) -> None:
        if not messages:
            return
        if exchange == EVENT_EXCHANGE:  # kombu's layout only (see kombu_compat)
            from corekit.plugins.redis.kombu_compat import publish_events

            publish_events(self.client, messages)
            return
        from corekit.plugins.redis.broadcast import channel

        name = channel(self.prefix, exchange)
        pipe = self.client.pipeline(transaction=False)
        for m in messages:
            pipe.publish(name, pack(m))
        pipe.execute()
        if exchange == REPLY_PIDBOX:  # a Celery client may be asking (see kombu_compat)
            from corekit.plugins.redis.kombu_compat import push_replies

            push_replies(self.client, messages)

    def subscribe_broadcast(self, exchanges: Sequence[str], routing_key: str | None = None
                            ) -> Subscription:
        from corekit.plugins.redis.broadcast import RedisSubscription

        return RedisSubscription(self.client, self.prefix, exchanges, routing_key)

    # -- rate limits --------------------------------------------------------------
    def take_tokens(self, key: str, rate: float, capacity: float, wanted: int
                    ) -> tuple[int, float]:
        granted, wait = self._run("ratelimit", [key, repr(rate), repr(capacity), wanted])
        return int(granted), float(wait)

    # -- management ---------------------------------------------------------------
    def purge(self, queues: Sequence[str]) -> int:
        return int(self._run("purge", list(queues)))

    def queue_size(self, queue: str) -> int:
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(self.prefix + "q:" + queue)
        pipe.zcard(self.prefix + "delayed:" + queue)
        return sum(pipe.execute())
