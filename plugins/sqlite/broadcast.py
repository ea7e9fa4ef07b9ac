"""Broadcast for ``sqlite://``: the ``broadcasts`` table (in the transport's
schema) that every process appends to.

A subscription remembers the highest id when it subscribes and then polls
for newer rows of its exchanges (``PRAGMA data_version`` first, so an idle
poll reads no table), backing off from 2 to 50 ms like `fetch`.  Ids are
AUTOINCREMENT and SQLite commits one writer at a time, so ids grow in commit
order and a subscriber never skips a row that commits late.  Rows are not
consumed: publishers delete those older than `KEEP_FOR` every `PRUNE_EVERY`
seconds, so a subscriber that does not read for a minute loses messages.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any, Sequence

import msgpack

from corekit.plugins.sqlite.db import Database, marks
from corekit.messages import Message
from corekit.transport import (Subscription, broadcast_key_matches,
                               check_broadcast_binding)

KEEP_FOR, PRUNE_EVERY = 60.0, 10.0
MIN_POLL, MAX_POLL = 0.002, 0.05
#: The most messages one `get` returns; the rest wait for the next call.
MAX_BATCH = 1000
FIELDS = ("headers", "properties", "content_type", "content_encoding", "routing_key", "queue",
          "priority")


def pack(m: Message) -> bytes:
    record = {f: getattr(m, f) for f in FIELDS}
    record["body"] = bytes(m.body)
    data: bytes = msgpack.packb(record, use_bin_type=True, default=str)
    return data


def unpack(exchange: str, data: bytes) -> Message:
    record = msgpack.unpackb(data, raw=False, strict_map_key=False)
    return Message(body=record.pop("body"), exchange=exchange, **record)


def publish(conn: sqlite3.Connection, exchange: str, messages: Sequence[Message], now: float,
            prune: bool) -> None:
    """Append *messages* (inside the caller's write transaction), and first
    delete the rows past `KEEP_FOR` when *prune*."""
    if prune:
        conn.execute("DELETE FROM broadcasts WHERE created < ?", (now - KEEP_FOR,))
    conn.executemany("INSERT INTO broadcasts (exchange, data, created) VALUES (?, ?, ?)",
                     [(exchange, pack(m), now) for m in messages])


class SQLiteSubscription(Subscription):
    """Polls the ``broadcasts`` table on connections of its own.

    `close` may come from another thread while `get` polls (a monitor or an
    events receiver stopping): it marks the subscription closed, which ends
    the poll within one sleep, and closes the connections only once `get`
    has let go of them.  Closing an sqlite3 connection that another thread
    is executing on crashes the interpreter.
    """

    def __init__(self, path: str, schema: str, exchanges: Sequence[str],
                 routing_key: str | None = None) -> None:
        check_broadcast_binding(exchanges, routing_key)
        self.exchanges = list(dict.fromkeys(exchanges))
        self.routing_key = routing_key
        self.closed = False
        #: held while `get` uses the connections; `close` waits for it
        self._using = threading.Lock()
        self.db = Database(path, schema)
        self.query = (f"SELECT id, exchange, data FROM broadcasts WHERE exchange IN"
                      f" ({marks(len(self.exchanges))}) AND id > ? ORDER BY id LIMIT {MAX_BATCH}")
        self.last: int = self.db.conn().execute(
            "SELECT COALESCE(MAX(id), 0) FROM broadcasts").fetchone()[0]

    def get(self, timeout: float) -> list[Message]:
        with self._using:
            return self._poll(timeout)

    def _poll(self, timeout: float) -> list[Message]:
        deadline = time.monotonic() + timeout
        delay = MIN_POLL
        version: Any = None
        while not self.closed:
            conn = self.db.conn()
            seen = conn.execute("PRAGMA data_version").fetchone()[0]
            if seen != version:
                version = seen
                rows = conn.execute(self.query, (*self.exchanges, self.last)).fetchall()
                if rows:
                    self.last = rows[-1][0]
                    got = self._wanted([unpack(exchange, data) for _, exchange, data in rows])
                    if got:
                        return got
                    if len(rows) == MAX_BATCH:
                        version = None  # more rows may wait: read again at once
                        continue
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(delay, left))
            delay = min(delay * 2, MAX_POLL)
        return []

    def _wanted(self, messages: list[Message]) -> list[Message]:
        key = self.routing_key
        if key is None:
            return messages
        return [m for m in messages if broadcast_key_matches(m.exchange, key, m.routing_key)]

    def close(self) -> None:
        if not self.closed:
            self.closed = True  # a poll in another thread ends within one sleep
            with self._using:
                self.db.close()
