"""The ``sqlite://PATH`` transport: the embedded default broker.

URL forms: ``sqlite://`` is ``corekit.sqlite3`` in the current working
directory, ``sqlite://relative/file.db`` is relative to it, and
``sqlite:///abs/path.db`` is absolute.  Several worker processes (and threads)
may share one file: WAL mode, a 30 s busy timeout, one connection per thread.

How it keeps its promises:

- a message goes to one consumer only: the claim (select + mark owned) is a
  single ``BEGIN IMMEDIATE`` transaction;
- a message with an ETA waits in the table (``eta`` column) and is promoted
  to ready (``eta`` NULL) by the first fetch after it is due;
- a fetched message is leased to its consumer (``owner``) until acked or
  rejected.  It comes back, marked redelivered, only when that consumer's
  ``last_seen`` in ``consumers`` is older than ``lease_timeout`` -- never
  because a task ran long while its worker kept heartbeating.  Lease times
  are SQLite's own clock (`SQL_NOW`), the clock of the one host whose
  processes share the file, never a process's ``time.time()``; a consumer
  whose row recovery deleted is not written back: its next fetch raises
  `LeaseLost`, and acks and rejects touch only rows it still owns;
- an idle fetch polls ``PRAGMA data_version`` (no table read) with a backoff
  of 2 to 50 ms, and wakes in time for the earliest ETA;
- broadcasts are rows of ``broadcasts`` that subscribers poll (see `broadcast`).
"""
from __future__ import annotations

import json
import sqlite3
import time
from typing import Any, Mapping, Sequence

from corekit.plugins.sqlite.db import Database, Transaction, chunks, marks, path_from_url
from corekit.plugins.sqlite.ratelimit import SCHEMA as RATE_SCHEMA
from corekit.plugins.sqlite.ratelimit import take_tokens
from corekit.plugins.sqlite.rows import BAD_ETA, COLUMNS, bury_bad_etas, letter_message
from corekit.plugins.sqlite.rows import messages_or_bury, select
from corekit.messages import Message
from corekit.transport import DeadLetter, Subscription, Transport

#: AUTOINCREMENT: an id (the delivery tag, the dead-letter id) is never reused,
#: so a late ack or an operator's replay can never hit a newer row.
SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    eta REAL,
    owner TEXT,
    redelivered INTEGER NOT NULL DEFAULT 0,
    headers TEXT NOT NULL,
    properties TEXT NOT NULL,
    content_type TEXT NOT NULL,
    content_encoding TEXT NOT NULL,
    exchange TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, priority DESC, id)
    WHERE owner IS NULL AND eta IS NULL;
CREATE INDEX IF NOT EXISTS messages_eta ON messages (eta) WHERE eta IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_owner ON messages (owner) WHERE owner IS NOT NULL;
CREATE TABLE IF NOT EXISTS consumers (
    consumer_id TEXT PRIMARY KEY,
    last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    headers TEXT NOT NULL,
    properties TEXT NOT NULL,
    content_type TEXT NOT NULL,
    content_encoding TEXT NOT NULL,
    exchange TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    body BLOB NOT NULL,
    reason TEXT NOT NULL,
    failed_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS broadcasts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    exchange TEXT NOT NULL,
    data BLOB NOT NULL,
    created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS broadcasts_exchange ON broadcasts (exchange, id);
""" + RATE_SCHEMA

INSERT_MESSAGE = (f"INSERT INTO messages ({COLUMNS}, eta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
RECOVER_EVERY = 1.0
MIN_POLL, MAX_POLL = 0.002, 0.05
#: Now, in epoch seconds (to the millisecond), by SQLite's clock: the one
#: clock every lease on the file is timed by (``unixepoch('subsec')`` needs
#: SQLite 3.42; this works on any).
SQL_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
FRESH_CONSUMERS = "SELECT consumer_id FROM consumers WHERE last_seen >= ?"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _row(m: Message) -> tuple[Any, ...]:
    return (m.queue, m.priority or 0, _dumps(m.headers), _dumps(m.properties),
            m.content_type, m.content_encoding, m.exchange or "", m.routing_key or "",
            m.body if isinstance(m.body, bytes) else bytes(m.body))


def _insert_rows(messages: Sequence[Message]) -> list[tuple[Any, ...]]:
    """`INSERT_MESSAGE` parameters; an ETA already due is stored as ready."""
    now = time.time()
    return [(*_row(m), m.eta if m.eta is not None and m.eta > now else None) for m in messages]


class SQLiteTransport(Transport):
    """A broker in one SQLite file (see the module docstring)."""

    scheme = "sqlite"
    default_url = "sqlite://"
    capabilities = frozenset({"delayed_delivery", "delayed_counted", "priority",
                              "queue_order", "dead_letter", "lease", "multiprocess",
                              "broadcast", "rate_limit"})

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(url, options)
        self.path = path_from_url(url)
        self.db = Database(self.path, SCHEMA)
        # Refresh our row often enough that a short lease never lapses between touches.
        self._touch_every = min(self.heartbeat_interval, self.lease_timeout) / 4
        self._touched_at = float("-inf")  # monotonic, as _recover_at
        self._recover_at = float("-inf")
        self._registered = False  # whether our consumers row was ever written
        self._prune_broadcasts_at = 0.0

    def connect(self) -> None:
        self.db.conn()

    def close(self) -> None:
        self.db.close()

    def describe(self) -> str:
        return f"{super().describe()} ({self.path})"

    # -- producing ----------------------------------------------------------------
    def publish(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        rows = _insert_rows(messages)  # built before taking the write lock
        with Transaction(self.db.conn()) as conn:
            conn.executemany(INSERT_MESSAGE, rows)

    def insert_messages(self, conn: sqlite3.Connection, messages: Sequence[Message]) -> None:
        """`publish`'s insert, through *conn* in the caller's write transaction
        on this file: the schedule store claims runs and sends their messages
        in one transaction with it.  `connect` first: it creates the tables."""
        conn.executemany(INSERT_MESSAGE, _insert_rows(messages))

    # -- consuming ----------------------------------------------------------------
    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Message]:
        if limit <= 0 or not queues:
            return []
        deadline = time.monotonic() + timeout
        delay = MIN_POLL
        version: int | None = None  # data_version when we last looked at the tables
        next_eta: float | None = None
        while True:
            conn = self.db.conn()
            now = time.time()
            if time.monotonic() - self._touched_at >= self._touch_every:
                self.heartbeat()  # a fetching consumer is alive
            if self.lease_lapsed:
                raise self.lost_lease()
            if time.monotonic() >= self._recover_at and self._recover(conn):
                version = None  # our own commit does not move data_version
            seen = conn.execute("PRAGMA data_version").fetchone()[0]
            if seen != version or (next_eta is not None and next_eta <= now):
                version = seen
                ready, next_eta = self._peek(conn, queues, now)
                if ready or (next_eta is not None and next_eta <= now):
                    got = self._claim(conn, queues, limit, now)
                    if got:
                        return got
                    version, delay = None, MIN_POLL  # another consumer won: look again
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            pause = min(delay, left)
            if next_eta is not None:
                pause = min(pause, max(0.0, next_eta - now))
            time.sleep(pause)
            delay = min(delay * 2, MAX_POLL)

    def _peek(self, conn: sqlite3.Connection, queues: Sequence[str], now: float
              ) -> tuple[bool, float | None]:
        """Without taking the write lock: is anything ready in *queues*, and
        when is the earliest delayed message (any queue) due?"""
        ready = conn.execute(
            f"SELECT 1 FROM messages WHERE queue IN ({marks(len(queues))})"
            " AND owner IS NULL AND eta IS NULL LIMIT 1", list(queues)).fetchone()
        # an ETA that is not a number (see `rows`) counts as ready: the claim buries it
        eta, bad = conn.execute(
            f"SELECT (SELECT MIN(eta) FROM messages WHERE eta <= 9e999),"
            f" EXISTS (SELECT 1 FROM messages WHERE {BAD_ETA})").fetchone()
        return ready is not None or bool(bad), eta

    def _claim(self, conn: sqlite3.Connection, queues: Sequence[str], limit: int, now: float
               ) -> list[Message]:
        """Renew the lease, promote due ETAs (by *now*, this process's
        clock: an ETA is the producer's absolute time), then take up to
        *limit* messages, in one write transaction so no other consumer
        can take the same ones.  LeaseLost, taking nothing, if the lease lapsed."""
        got: list[Message] = []
        with Transaction(conn):
            lapsed = not self._touch(conn)
            bury_bad_etas(conn)  # rows that are no message go to dead_letters (see `rows`)
            conn.execute("UPDATE messages SET eta = NULL WHERE eta IS NOT NULL AND eta <= ?",
                         (now,))
            for queue in () if lapsed else queues:
                rows = select(conn, "SELECT id, redelivered != 0, {} FROM messages"
                              " WHERE queue = ? AND owner IS NULL AND eta IS NULL"
                              " ORDER BY priority DESC, id LIMIT ?", (queue, limit - len(got)))
                got.extend(messages_or_bury(conn, rows))
                if len(got) >= limit:
                    break
            for tags in chunks([m.delivery_tag for m in got]):
                conn.execute(f"UPDATE messages SET owner = ? WHERE id IN ({marks(len(tags))})",
                             (self.consumer_id, *tags))
        if lapsed:  # raised out of the transaction: `lost_lease` takes the lease lock
            raise self.lost_lease()
        return got

    def _touch(self, conn: sqlite3.Connection) -> bool:
        """Renew our lease by SQLite's clock, in the caller's write
        transaction: False if it lapsed (recovery deleted our row, and
        writing it back would claim messages running elsewhere)."""
        started = time.monotonic()
        if self._registered:
            alive = conn.execute(f"UPDATE consumers SET last_seen = {SQL_NOW}"
                                 " WHERE consumer_id = ?", (self.consumer_id,)).rowcount == 1
        else:
            conn.execute(f"INSERT INTO consumers (consumer_id, last_seen) VALUES (?, {SQL_NOW})"
                         " ON CONFLICT (consumer_id) DO UPDATE SET last_seen = excluded.last_seen",
                         (self.consumer_id,))
            self._registered = alive = True
        if alive:
            self._touched_at = self.lease_renewed = started
        return alive

    def _recover(self, conn: sqlite3.Connection) -> bool:
        """Give back the messages of consumers whose heartbeat lapsed (by
        SQLite's clock) and forget those consumers; True if messages came
        back.  A cheap read first, the write lock only when there is
        something to do."""
        self._recover_at = time.monotonic() + min(RECOVER_EVERY, self.lease_timeout / 2)
        cutoff = f"{SQL_NOW} - ?"
        stale = conn.execute(
            f"SELECT EXISTS (SELECT 1 FROM consumers WHERE last_seen < {cutoff})"
            " OR EXISTS (SELECT 1 FROM messages WHERE owner IS NOT NULL"
            f" AND owner NOT IN (SELECT consumer_id FROM consumers WHERE last_seen >= {cutoff}))",
            (self.lease_timeout, self.lease_timeout)).fetchone()[0]
        if not stale:
            return False
        with Transaction(conn):
            # one cutoff for both statements: the write lock keeps everyone else out
            cutoff = conn.execute(f"SELECT {SQL_NOW} - ?", (self.lease_timeout,)).fetchone()[0]
            back = conn.execute(
                "UPDATE messages SET owner = NULL, redelivered = 1 WHERE owner IS NOT NULL"
                f" AND owner NOT IN ({FRESH_CONSUMERS})", (cutoff,)).rowcount
            conn.execute("DELETE FROM consumers WHERE last_seen < ?", (cutoff,))
        return back > 0

    def heartbeat(self) -> None:
        with self.lease_lock:  # the consumer's thread may be replacing a lapsed lease
            with Transaction(self.db.conn()) as conn:
                alive = self._touch(conn)
            if not alive:
                self.lease_lapsed = True

    def new_lease(self) -> None:
        self._registered = False

    def ack(self, messages: Sequence[Message]) -> None:
        # only rows still ours: after a lapse they may be running elsewhere
        self._by_tag("DELETE FROM messages WHERE owner = ? AND id IN ({})", messages,
                     self.consumer_id)

    def reject(self, messages: Sequence[Message], requeue: bool) -> None:
        if requeue:  # only while still ours: a lapsed lease may be someone else's now
            self._by_tag("UPDATE messages SET owner = NULL, redelivered = 1"
                         " WHERE owner = ? AND id IN ({})", messages, self.consumer_id)
        else:
            self._by_tag("DELETE FROM messages WHERE owner = ? AND id IN ({})", messages,
                         self.consumer_id)

    def _by_tag(self, sql: str, messages: Sequence[Message], *first: Any) -> None:
        tags = [m.delivery_tag for m in messages]
        if not tags:
            return
        with Transaction(self.db.conn()) as conn:
            for part in chunks(tags):
                conn.execute(sql.format(marks(len(part))), (*first, *part))

    # -- dead letters -------------------------------------------------------------
    def dead_letter(self, message: Message, reason: str) -> None:
        # Built from the message itself, so nothing is lost even when its row
        # is gone (already acked) or it never came from this broker.
        with Transaction(self.db.conn()) as conn:
            conn.execute(f"INSERT INTO dead_letters ({COLUMNS}, reason, failed_at)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (*_row(message), reason, time.time()))
            if message.delivery_tag is not None:
                conn.execute("DELETE FROM messages WHERE id = ?", (message.delivery_tag,))

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = select(self.db.conn(), "SELECT id, 0, {}, reason, failed_at FROM dead_letters"
                      " ORDER BY id LIMIT ?", (limit,))
        letters = []
        for row in rows:
            message = letter_message(row[:-2])
            message.delivery_tag = None
            letters.append(DeadLetter(row[0], message, row[-2], row[-1]))
        return letters

    def replay_dead_letters(self, ids: Sequence[Any] | None = None) -> int:
        if ids is not None and not ids:
            return 0
        with Transaction(self.db.conn()) as conn:
            if ids is None:
                return self._replay(conn, "", ())
            return sum(self._replay(conn, f" WHERE id IN ({marks(len(part))})", part)
                       for part in chunks(list(ids)))

    @staticmethod
    def _replay(conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> int:
        conn.execute(f"INSERT INTO messages ({COLUMNS}) SELECT {COLUMNS} FROM dead_letters"
                     f"{where} ORDER BY id", params)
        return int(conn.execute(f"DELETE FROM dead_letters{where}", params).rowcount)

    # -- broadcast ----------------------------------------------------------------
    def publish_broadcast(self, exchange: str, messages: Sequence[Message]) -> None:
        if not messages:
            return
        from corekit.plugins.sqlite.broadcast import PRUNE_EVERY, publish

        now = time.time()
        prune = now >= self._prune_broadcasts_at
        with Transaction(self.db.conn()) as conn:
            publish(conn, exchange, messages, now, prune)
        if prune:
            self._prune_broadcasts_at = now + PRUNE_EVERY

    def subscribe_broadcast(self, exchanges: Sequence[str], routing_key: str | None = None
                            ) -> Subscription:
        from corekit.plugins.sqlite.broadcast import SQLiteSubscription

        return SQLiteSubscription(self.path, SCHEMA, exchanges, routing_key)

    # -- rate limits --------------------------------------------------------------
    def take_tokens(self, key: str, rate: float, capacity: float, wanted: int
                    ) -> tuple[int, float]:
        with Transaction(self.db.conn()) as conn:
            return take_tokens(conn, key, rate, capacity, wanted)

    # -- management ---------------------------------------------------------------
    def purge(self, queues: Sequence[str]) -> int:
        if not queues:
            return 0
        with Transaction(self.db.conn()) as conn:
            return int(conn.execute(
                f"DELETE FROM messages WHERE owner IS NULL AND queue IN ({marks(len(queues))})",
                list(queues)).rowcount)

    def queue_size(self, queue: str) -> int:
        row = self.db.conn().execute(
            "SELECT COUNT(*) FROM messages WHERE queue = ? AND owner IS NULL", (queue,)).fetchone()
        return int(row[0])
