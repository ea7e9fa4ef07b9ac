"""The ``redis://`` result backend, in Celery's layout: each result is the
serialized meta at ``celery-task-meta-<id>``, kept ``result_expires`` seconds,
and announced on the pub/sub channel of the same name so `wait_for` wakes up
at once instead of polling.

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
from corekit.backend import ResultBackend
from corekit.exceptions import TimeoutError as CorekitTimeoutError
from corekit.plugins.redis.client import Lane, connect, script

KEY_PREFIX = "celery-task-meta-"
#: A sorted set of revocations (JSON) scored by when they were made.
REVOKED_KEY = "corekit-revoked"
REVOKES_EXPIRE = 10800.0
COUNTER_PREFIX = "chord-unlock-"


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
            args += [KEY_PREFIX + task_id, data, 1 if status in ready else 0]
        store = self._store
        if store is None:
            store = self._store = script(Lane(self.client), "store")
        store(args=args)

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
        key = KEY_PREFIX + task_id
        channel = key.encode()
        deadline = None if timeout is None else time.monotonic() + timeout
        pubsub = self._pubsub()
        try:
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
                elif message["channel"] == channel:  # the store published the meta itself
                    meta = self.decode_meta(message["data"])
            pubsub.unsubscribe(key)  # sent, not waited for; the connection is kept
            return meta
        except BaseException:
            self._drop_pubsub()
            raise

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
