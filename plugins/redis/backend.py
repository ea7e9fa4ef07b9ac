"""The ``redis://`` result backend, in Celery's layout: each result is the
serialized meta at ``celery-task-meta-<id>``, kept ``result_expires`` seconds,
and announced on the pub/sub channel of the same name so `wait_for` wakes up
at once instead of polling (a meta over `PUBLISH_MAX` by a short notice, the
waiter then reads the key).

Counters (`incr`) live at ``chord-unlock-<key>``: Celery's key-value result
backends keep a chord's join counter under that name (``chord-unlock-`` and
the group id), INCR'd by each finished part and given an expiry.  Celery's
own Redis backend joins chords differently (a sorted set of the parts'
results at ``celery-taskset-meta-<group>.j``), so sharing the name alone
does not let a Celery worker and a corekit worker join one chord together."""
from __future__ import annotations

import json
import threading
import time
from typing import Any, Mapping, Sequence

from corekit import states
from corekit.result_backend import ResultBackend
from corekit.exceptions import TimeoutError as CorekitTimeoutError
from corekit.plugins.redis.client import Lane, connect, script

KEY_PREFIX = "celery-task-meta-"
#: A sorted set of revocations (JSON) scored by when they were made.
REVOKED_KEY = "corekit-revoked"
REVOKES_EXPIRE = 10800.0
COUNTER_PREFIX = "chord-unlock-"
#: A ready meta up to this size is published whole, as Celery does; a larger
#: one is announced by a short notice and read with GET: Redis drops a
#: subscriber whose output buffer passes 32 MB (8 MB for a minute).
PUBLISH_MAX = 4 * 1024 * 1024
#: The key that marks a notice (`RedisBackend._notice`).
NOTICE = "corekit_stored"


class RedisBackend(ResultBackend):
    scheme = "redis"

    def __init__(self, url: str, codecs: Any, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(url, codecs, options)
        self._client: Any = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._store: Any = None

    @property
    def client(self) -> Any:
        # Locked: a second client made by a racing thread would be collected,
        # and redis-py closes a collected client's pool under the other thread.
        with self._lock:
            if self._client is None:
                self._client = connect(self.url)
            return self._client

    # Celery stores the bare serialized meta, so a Celery client reads ours.
    def encode_meta(self, meta: Mapping[str, Any]) -> bytes:
        return self.codecs.serializer(self.serializer).dumps(dict(meta))

    def decode_meta(self, data: bytes) -> dict[str, Any]:
        ctype = self.codecs.serializer(self.serializer).content_type
        return self.codecs.decode(data, ctype, None, self.accept)

    def _get(self, task_id: str) -> bytes | None:
        return self.client.get(KEY_PREFIX + task_id)

    def _set_many(self, items: Sequence[tuple[str, bytes, str]]) -> None:
        # One script call for the batch: a pipeline costs redis-py a command
        # packed and a reply parsed per SET and per PUBLISH.
        if not items:
            return
        args: list[Any] = [self._expires_ms() or 0]
        ready = states.READY_STATES
        for task_id, data, status in items:
            announce: Any = 0
            if status in ready:
                announce = 1 if len(data) <= PUBLISH_MAX else self._notice(task_id)
            args += [KEY_PREFIX + task_id, data, announce]
        store = self._store
        if store is None:
            store = self._store = script(Lane(self.client), "store")
        store(args=args)

    def _notice(self, task_id: str) -> bytes:
        """What a large result's channel hears instead of the meta: a meta
        in a state that is not ready (a Celery client waits on), marked so
        that corekit's `wait_for` reads the key."""
        return self.encode_meta({"task_id": task_id, "status": states.PENDING, NOTICE: True})

    def _get_many(self, task_ids: Sequence[str]) -> list[bytes | None]:
        if not task_ids:
            return []
        return list(self.client.mget([KEY_PREFIX + task_id for task_id in task_ids]))

    def _delete(self, task_id: str) -> None:
        self.client.delete(KEY_PREFIX + task_id)

    # Groups at Celery's key, ``celery-taskset-meta-<id>``, not under KEY_PREFIX.
    def save_group(self, group_id: str, result: Any) -> None:
        meta = {"task_id": group_id, "status": states.SUCCESS, "result": result.as_tuple()}
        self.client.set(self.GROUP_PREFIX + group_id, self.encode_meta(meta),
                        px=self._expires_ms())

    def restore_group(self, group_id: str, app: Any = None) -> Any:
        from corekit.result import result_from_tuple

        data = self.client.get(self.GROUP_PREFIX + group_id)
        return None if data is None else result_from_tuple(self.decode_meta(data)["result"], app)

    def delete_group(self, group_id: str) -> None:
        self.client.delete(self.GROUP_PREFIX + group_id)

    def chord_size(self, group_id: str) -> int | None:
        # Celery 5.5+ clients keep the size at celery-taskset-meta-<id>.s
        size = self.client.get(self.GROUP_PREFIX + group_id + ".s")
        return int(size) if size else None

    def _expires_ms(self) -> int | None:
        return max(1, int(self.expires * 1000)) if self.expires else None

    def incr(self, key: str, amount: int = 1) -> int:
        # MULTI runs INCRBY and PEXPIRE as one step: no counter is left
        # without its expiry by a client lost between the two.
        pipe = self.client.pipeline(transaction=True)
        pipe.incrby(COUNTER_PREFIX + key, amount)
        expires_ms = self._expires_ms()
        if expires_ms:
            pipe.pexpire(COUNTER_PREFIX + key, expires_ms)
        return int(pipe.execute()[0])

    def get_counter(self, key: str) -> int:
        return int(self.client.get(COUNTER_PREFIX + key) or 0)

    def delete_counter(self, key: str) -> None:
        self.client.delete(COUNTER_PREFIX + key)

    def add_revocations(self, entries: Sequence[Mapping[str, Any]]) -> None:
        keep = float(self.options.get("revokes_expire", REVOKES_EXPIRE))
        pipe = self.client.pipeline(transaction=True)
        for entry in entries:
            pipe.zadd(REVOKED_KEY, {json.dumps(dict(entry), sort_keys=True): entry["at"]})
        pipe.zremrangebyscore(REVOKED_KEY, "-inf", time.time() - keep)
        pipe.execute()

    def revocations(self, since: float) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.client.zrangebyscore(REVOKED_KEY, since, "+inf")]

    def wait_for(self, task_id: str, timeout: float | None = None, interval: float = 0.5
                 ) -> dict[str, Any]:
        """Wait on the task's channel; a pub/sub connection the server
        dropped (``CLIENT KILL``, a restart, an output-buffer limit) is
        replaced once and the wait goes on."""
        from redis.exceptions import ConnectionError as RedisConnectionError

        deadline = None if timeout is None else time.monotonic() + timeout
        for attempt in (1, 2):
            try:
                return self._wait(task_id, deadline, timeout, interval)
            except RedisConnectionError:
                self._drop_pubsub()
                if attempt == 2:
                    raise
            except BaseException:
                self._drop_pubsub()
                raise
        raise AssertionError("unreachable")

    def _wait(self, task_id: str, deadline: float | None, timeout: float | None,
              interval: float) -> dict[str, Any]:
        key = KEY_PREFIX + task_id
        channel = key.encode()
        pubsub = self._pubsub()
        pubsub.subscribe(key)  # before the first look, so no store slips between
        meta = self.get_task_meta(task_id)
        while meta["status"] not in states.READY_STATES:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise CorekitTimeoutError(
                    f"the operation timed out after {timeout}s waiting for task {task_id}")
            message = pubsub.get_message(timeout=min(interval, left) if left is not None
                                         else interval)
            if message is None:
                meta = self.get_task_meta(task_id)  # a missed message costs one interval
            elif message["channel"] == channel:
                meta = self._announced(task_id, message["data"])
        pubsub.unsubscribe(key)  # sent, not waited for; the connection is kept
        return meta

    def _announced(self, task_id: str, data: bytes) -> dict[str, Any]:
        """The meta a store published, or read from the key when it
        published a notice (or something unreadable)."""
        try:
            meta = self.decode_meta(data)
        except Exception:
            return self.get_task_meta(task_id)
        if (not isinstance(meta, dict) or NOTICE in meta or "status" not in meta
                or meta.get("task_id") != task_id):
            return self.get_task_meta(task_id)
        return meta

    def _pubsub(self) -> Any:
        """This thread's pub/sub connection, kept between waits (opening one
        per get() cost a connect each time)."""
        client = self.client
        held = getattr(self._local, "pubsub", None)
        if held is None or held[0] is not client:
            held = (client, client.pubsub(ignore_subscribe_messages=True))
            self._local.pubsub = held
        return held[1]

    def _drop_pubsub(self) -> None:
        held = getattr(self._local, "pubsub", None)
        self._local.pubsub = None
        if held is not None:
            try:
                held[1].close()
            except Exception:  # a broken connection may fail to close too
                pass

    def close(self) -> None:
        self._drop_pubsub()
        with self._lock:
            client, self._client = self._client, None
            store, self._store = self._store, None
        if store is not None:
            store.lane.close()
        if client is not None:
            client.close()
