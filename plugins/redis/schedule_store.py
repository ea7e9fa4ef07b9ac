"""The ``redis://`` schedule store (`corekit.schedules.store`): periodic
tasks, their run state, the beat leader's lease and the run claims, in Redis.

It connects as the transport does (`client.connect`: the same URL forms, TLS
options and Unix sockets); option ``prefix`` (default ``corekit:``, the
transport's) is followed by ``beat:``.  Every step that changes something is
one Lua script (``lua/beat_*.lua``), timed by Redis's clock:

- definitions and run state are hashes keyed by entry name (``defs``,
  ``source``, ``changed_at``, ``last_run``, ``last_task``, ``count``), so
  `load` is seven commands in one MULTI even with 100,000 entries;
- the cursor is an INCR counter; ``versions`` (a sorted set) holds each
  name's cursor at its last change, removals too, so `changes` is one
  ZRANGEBYSCORE; tombstones older than a day are pruned (a cursor from
  before them gets everything, as the contract allows);
- every change publishes the new cursor on ``changed``: `wait_for_change`
  blocks on that channel;
- the lease is one key holding the holder's name, expiring by PX;
- each claimed run is recorded (``run``, ``runs``, ``runs:<name>``,
  ``unsent`` until confirmed), kept a day and at least the last 100 per entry;
  a run a worker took (`take_runs`) has its send id in ``taken``, dropped
  with the record.

`fire` with the Redis transport on the same server and database claims and
publishes in one MULTI/EXEC (see `fire`).
"""
from __future__ import annotations

import math
import threading
import time
import weakref
from typing import Any, Callable, Mapping, Sequence

from corekit.plugins.redis.client import Lane, connect, script
from corekit.plugins.redis.schedule_values import (
    decode_count, decode_number, decode_text, run_args, run_id, stored_entry)
from corekit.schedules.store import (Changes, Run, ScheduleStore, StoredEntry, check_cursor,
                                     check_definition, check_holder, check_name, check_put,
                                     check_runs, check_takes)

__all__ = ["RedisScheduleStore"]

#: the per-entry hashes, in the order `stored_entry` takes them
HASHES = ("defs", "source", "changed_at", "last_run", "last_task", "count")
SCRIPTS = ("beat_defs", "beat_changes", "beat_lease", "beat_claim", "beat_take")
#: `fire` retries its transaction this often when a watched key changes, then
#: claims and publishes in two steps (unsent runs cover a crash between them)
FIRE_ATTEMPTS = 10
#: `wait_for_change` reads the cursor at least this often (seconds)
RECHECK_EVERY = 1.0


#: seconds a store call waits for the server (the longest, sync_config of
#: 100,000 entries, takes about one)
STORE_SOCKET_TIMEOUT = 30.0


class RedisScheduleStore(ScheduleStore):
    """A `ScheduleStore` in Redis (see the module docstring)."""

    scheme = "redis"

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(url, options)
        self.prefix = str(self.options.get("prefix", "corekit:")) + "beat:"
        self._client: Any = None
        self._lane: Lane | None = None
        self._scripts: dict[str, Any] = {}
        self._lock = threading.Lock()
        #: transport -> whether it uses this store's server and database
        self._shared: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        from corekit.transport import mask_url

        return f"<RedisScheduleStore {mask_url(self.url)}>"

    @property
    def client(self) -> Any:
        with self._lock:  # two threads' first calls must not make two clients
            if self._client is None:
                # a server that accepts and never answers must not hang a beat
                # (or the monitor) forever: each call gives up after this long
                client = connect(self.url, socket_timeout=STORE_SOCKET_TIMEOUT,
                                 socket_connect_timeout=STORE_SOCKET_TIMEOUT)
                self._lane = Lane(client)
                self._scripts = {name: script(self._lane, name) for name in SCRIPTS}
                self._client = client
            return self._client

    def _run(self, name: str, *args: Any) -> Any:
        self.client  # noqa: B018 - connects and loads the scripts
        return self._scripts[name](args=[self.prefix, *args])

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            lane, self._lane = self._lane, None
        if lane is not None:
            lane.close()
        if client is not None:
            client.close()

    # -- clock ---------------------------------------------------------------
    def now(self) -> float:
        seconds, micros = self.client.time()
        return seconds + micros / 1e6

    # -- definitions ---------------------------------------------------------
    def load(self) -> tuple[int, list[StoredEntry]]:
        pipe = self.client.pipeline(transaction=True)
        pipe.get(self.prefix + "cursor")
        for hash_name in HASHES:
            pipe.hgetall(self.prefix + hash_name)
        cursor, *maps = pipe.execute(raise_on_error=False)
        tables = [m if isinstance(m, dict) else {} for m in maps]  # a key of another type
        entries = [stored_entry(name, *(t.get(name) for t in tables)) for name in tables[0]]
        return decode_count(cursor), sorted(entries, key=lambda e: e.name)

    def get(self, name: str) -> StoredEntry | None:
        check_name(name)
        pipe = self.client.pipeline(transaction=True)
        for hash_name in HASHES:
            pipe.hget(self.prefix + hash_name, name)
        fields = [None if isinstance(v, Exception) else v
                  for v in pipe.execute(raise_on_error=False)]
        return None if fields[0] is None else stored_entry(name.encode(), *fields)

    def changes(self, cursor: int) -> Changes:
        cursor = check_cursor(cursor)
        raw = self._run("beat_changes", cursor)
        if raw[1] == b"all":
            current, entries = self.load()
            return Changes(current, entries, [])
        changed, removed = [], []
        for i in range(2, len(raw), len(HASHES) + 1):
            name, *fields = raw[i:i + len(HASHES) + 1]
            if fields[0] is None:
                removed.append(decode_text(name))
            else:
                changed.append(stored_entry(name, *fields))
        return Changes(int(raw[0]), changed, removed)

    def wait_for_change(self, cursor: int, timeout: float) -> bool:
        """Subscribe to ``changed`` first, then read the cursor (a change
        between the two is seen either way), then block on the channel."""
        cursor = check_cursor(cursor)
        deadline = time.monotonic() + max(0.0, timeout)
        pubsub = self.client.pubsub()
        try:
            pubsub.subscribe(self.prefix + "changed")
            while True:  # the server confirms before the cursor is read
                left = deadline - time.monotonic()
                message = pubsub.get_message(timeout=max(left, 0.0))
                if message is not None and message["type"] == "subscribe":
                    break
                if left <= 0:
                    return self._cursor() != cursor
            while True:
                if self._cursor() != cursor:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                # at most a second per read: a change published while redis-py
                # was reconnecting and subscribing again is still seen
                pubsub.get_message(timeout=min(left, RECHECK_EVERY))
        finally:
            pubsub.close()

    def _cursor(self) -> int:
        try:
            return decode_count(self.client.get(self.prefix + "cursor"))
        except Exception as exc:  # a key of another type: as unreadable as garbage
            from redis.exceptions import ResponseError

            if isinstance(exc, ResponseError):
                return 0
            raise

    def put(self, name: str, definition: str, source: str = "api") -> None:
        check_put(name, definition, source)
        self._run("beat_defs", "put", source, name, definition)

    def remove(self, name: str) -> bool:
        check_name(name)
        return bool(self._run("beat_defs", "remove", name))

    def sync_config(self, definitions: Mapping[str, str]) -> None:
        args: list[str] = []
        for name, definition in definitions.items():
            check_name(name)
            check_definition(name, definition)
            args += [name, definition]
        self._run("beat_defs", "sync", *args)

    # -- the leader lease ----------------------------------------------------
    def acquire_lease(self, holder: str, ttl: float) -> bool:
        check_holder(holder)
        if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or not (
                math.isfinite(ttl) and ttl > 0):
            raise ValueError(f"lease ttl must be a positive number of seconds, got {ttl!r}")
        return bool(self._run("beat_lease", "acquire", holder, max(1, round(ttl * 1000))))

    def release_lease(self, holder: str) -> None:
        check_holder(holder)
        self._run("beat_lease", "release", holder, 0)

    def lease(self) -> tuple[str, float] | None:
        raw = self._run("beat_lease", "read", "", 0)
        return (decode_text(raw[0]), raw[1] / 1000) if raw else None

    # -- runs ----------------------------------------------------------------
    def claim_runs(self, holder: str, runs: Sequence[Run]) -> list[Run]:
        check_holder(holder)
        runs = check_runs(runs)
        if not runs:
            return []
        positions = self._run("beat_claim", holder, "0", *run_args(runs))
        return [runs[i - 1] for i in positions]

    def confirm_runs(self, runs: Sequence[Run]) -> None:
        ids = [run_id(run) for run in check_runs(runs)]
        if ids:
            self.client.zrem(self.prefix + "unsent", *ids)

    def take_runs(self, runs: Sequence[tuple[str, float, str]]) -> list[bool]:
        runs = check_takes(runs)
        if not runs:
            return []
        args = [arg for name, at, send_id in runs
                for arg in (run_id(Run(name, at, "")), send_id)]
        marks = self._run("beat_take", *args)
        return [mark == 0 or mark == send_id.encode()
                for mark, (_, _, send_id) in zip(marks, runs)]

    def unsent_runs(self) -> list[Run]:
        ids = self.client.zrange(self.prefix + "unsent", 0, -1)
        return [run for run, _ in self._records(ids, sent=set())]

    def recent_runs(self, name: str | None = None, limit: int = 100) -> list[tuple[Run, bool]]:
        if name is not None:
            check_name(name)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise ValueError(f"limit must be a non-negative integer, got {limit!r}")
        if limit == 0:
            return []
        key = self.prefix + ("runs" if name is None else "runs:" + name)
        ids = self.client.zrevrange(key, 0, limit - 1)
        if not ids:
            return []
        unsent = self.client.zmscore(self.prefix + "unsent", ids)
        return self._records(ids, sent={i for i, s in zip(ids, unsent) if s is None})

    def _records(self, ids: Sequence[bytes], sent: set[bytes]) -> list[tuple[Run, bool]]:
        """The runs behind *ids* (a record another program wrote wrong is left out)."""
        if not ids:
            return []
        task_ids = self.client.hmget(self.prefix + "run", ids)
        records = []
        for stored_id, task_id in zip(ids, task_ids):
            at, bar, name = stored_id.partition(b"|")
            scheduled_at = decode_number(at)
            if bar and task_id is not None and scheduled_at is not None:
                run = Run(decode_text(name), scheduled_at, decode_text(task_id))
                records.append((run, stored_id in sent))
        return records

    def fire(self, holder: str, runs: Sequence[Run], transport: Any,
             make_messages: Callable[[Sequence[Run], bool], list[Any]],
             publish: Callable[[list[Any]], None]) -> list[Run]:
        """With the Redis transport on this server and database: WATCH the
        lease and the keys a claim reads, work out which runs the claim will
        take, then one MULTI/EXEC runs the claim script (recording them sent)
        and the transport's own publish script (`RedisTransport.queue_publish`).
        A watched key that changes (a lease lapsing, another claim) aborts the
        EXEC and the step starts over, so this path never leaves a run claimed
        and unsent.  Otherwise (another server or database, a claim key of
        the wrong type, ten aborted attempts) the base class's two steps."""
        check_holder(holder)
        runs = check_runs(runs)
        if not runs:
            return []
        if not self.shares_transport(transport):
            return super().fire(holder, runs, transport, make_messages, publish)
        if not self._writable(runs):  # the claim would fail after the publish
            return super().fire(holder, runs, transport, make_messages, publish)
        from redis.exceptions import WatchError

        watched = [self.prefix + k for k in ("lease", "defs", "last_run")]
        claim = self._scripts["beat_claim"].source
        for _ in range(FIRE_ATTEMPTS):
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(*watched)
                    claimable = _claimable(pipe, self.prefix, holder, runs)
                    if not claimable:
                        return []
                    messages = make_messages(claimable, False)
                    pipe.multi()
                    pipe.eval(claim, 0, self.prefix, holder, "1", *run_args(claimable))
                    transport.queue_publish(pipe, messages)
                    positions = pipe.execute()[0]
                except WatchError:
                    continue
            return [claimable[i - 1] for i in positions]
        return super().fire(holder, runs, transport, make_messages, publish)

    def _writable(self, runs: Sequence[Run]) -> bool:
        """Whether the keys a claim writes are free or of the claim's types
        (a script error in a MULTI does not undo the publish queued after it):
        the claim script's own check, run alone first, in one call."""
        from redis.exceptions import ResponseError

        try:
            self._run("beat_claim", "", "check", *run_args(runs))
        except ResponseError:
            return False
        return True

    def shares_transport(self, transport: Any) -> bool:
        """Whether *transport* is the Redis transport on this server (by its
        run id, whatever the address says) and database."""
        from corekit.plugins.redis.transport import RedisTransport

        if not isinstance(transport, RedisTransport):
            return False
        shared = self._shared.get(transport)
        if shared is None:
            mine, theirs = (c.connection_pool.connection_kwargs
                            for c in (self.client, transport.client))
            shared = mine.get("db", 0) == theirs.get("db", 0) and (
                _server_id(self.client) == _server_id(transport.client))
            self._shared[transport] = shared
        return shared


def _server_id(client: Any) -> Any:
    """The server's run id; its address when INFO is not allowed (an ACL)."""
    from redis.exceptions import ResponseError

    try:
        return client.info("server")["run_id"]
    except ResponseError:
        kwargs = client.connection_pool.connection_kwargs
        return kwargs.get("path") or (kwargs.get("host"), kwargs.get("port"))


def _claimable(pipe: Any, prefix: str, holder: str, runs: Sequence[Run]) -> list[Run]:
    """What ``beat_claim.lua`` would claim now (the pipeline is watching)."""
    from redis.exceptions import ResponseError

    try:
        lease = pipe.get(prefix + "lease")
    except ResponseError:  # a key of another type: no lease
        return []
    if lease is None or decode_text(lease) != holder or pipe.pttl(prefix + "lease") < 0:
        return []
    names = list(dict.fromkeys(run.name for run in runs))
    exists = dict(zip(names, (v is not None for v in pipe.hmget(prefix + "defs", names))))
    last = dict(zip(names, (decode_number(v) for v in pipe.hmget(prefix + "last_run", names))))
    claimable = []
    for run in runs:
        previous = last[run.name]
        if exists[run.name] and (previous is None or previous < run.scheduled_at):
            last[run.name] = run.scheduled_at
            claimable.append(run)
    return claimable
