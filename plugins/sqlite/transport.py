"""The ``sqlite://PATH`` transport: the embedded default broker.

URL forms: ``sqlite://`` is ``corekit.sqlite3`` in the working directory,
``sqlite://relative/file.db`` is relative to it, ``sqlite:///abs/file.db`` is
absolute.  Several worker processes may share one file.

Guarantees:

- a message is fetched by one consumer only: the claim is a single
  ``BEGIN IMMEDIATE`` transaction;
- a message with an ETA stays in the table (``eta`` column) until it is due;
- a fetched message is leased to its consumer until acked or rejected; it
  comes back only when that consumer's heartbeat is older than
  ``lease_timeout``, never because a task ran long.
"""
from __future__ import annotations

import json
import time
from typing import Any, Sequence

from corekit.plugins.sqlite.db import Database, Transaction, chunks, path_from_url
from corekit.transport import DeadLetter, Message, Transport

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
    id TEXT PRIMARY KEY,
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
    failed_at REAL NOT NULL)
"""

COLUMNS = ("queue, priority, headers, properties, content_type, content_encoding, exchange, "
           "routing_key, body")
RECOVER_EVERY = 1.0
MIN_POLL, MAX_POLL = 0.002, 0.05


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


class SQLiteTransport(Transport):
    scheme = "sqlite"
    capabilities = frozenset({"delayed_delivery", "priority", "dead_letter", "lease",
                              "multiprocess"})

    def __init__(self, url: str, options: Any = None) -> None:
        super().__init__(url, options)
        self.path = path_from_url(url)
        self.db = Database(self.path, SCHEMA)
        self._recovered_at = 0.0
        self._seen_at = 0.0

    def connect(self) -> None:
        self.db.conn()

    def describe(self) -> str:
        return f"{super().describe()} ({self.path})"

    def close(self) -> None:
        self.db.close()

    # -- producing ------------------------------------------------------------------
    def publish(self, messages: Sequence[Message]) -> None:
        rows = [(m.queue, m.priority or 0, m.eta, _dumps(m.headers), _dumps(m.properties),
                 m.content_type, m.content_encoding, m.exchange or "",
                 m.routing_key or m.queue, m.body) for m in messages]
        with Transaction(self.db.conn()) as conn:
            conn.executemany(
                "INSERT INTO messages (queue, priority, eta, headers, properties, content_type,"
                " content_encoding, exchange, routing_key, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    # -- consuming ------------------------------------------------------------------
    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Message]:
        deadline = time.monotonic() + timeout
        delay = MIN_POLL
        conn = self.db.conn()
        while True:
            now = time.time()
            if now - self._recovered_at >= min(RECOVER_EVERY, self.lease_timeout / 2):
                self._recover(conn, now)
            if self._has_work(conn, queues, now):
                got = self._claim(conn, queues, limit, now)
                if got:
                    return got
                delay = MIN_POLL
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            time.sleep(min(delay, left))
            delay = min(delay * 2, MAX_POLL)

    def _has_work(self, conn: Any, queues: Sequence[str], now: float) -> bool:
        """A cheap read (no lock) before taking the write lock."""
        marks = ",".join("?" * len(queues))
        row = conn.execute(
            f"SELECT 1 FROM messages WHERE queue IN ({marks}) AND owner IS NULL"
            f" AND eta IS NULL LIMIT 1", list(queues)).fetchone()
        if row:
            return True
        row = conn.execute("SELECT MIN(eta) FROM messages WHERE eta IS NOT NULL").fetchone()
        return row[0] is not None and row[0] <= now

    def _claim(self, conn: Any, queues: Sequence[str], limit: int, now: float
               ) -> list[Message]:
        got: list[Message] = []
        with Transaction(conn):
            conn.execute("UPDATE messages SET eta = NULL WHERE eta IS NOT NULL AND eta <= ?"
                         " AND owner IS NULL", (now,))
            for queue in queues:
                if len(got) >= limit:
                    break
                rows = conn.execute(
                    f"SELECT id, redelivered, {COLUMNS} FROM messages"
                    " WHERE queue = ? AND owner IS NULL AND eta IS NULL"
                    " ORDER BY priority DESC, id LIMIT ?", (queue, limit - len(got))).fetchall()
                got.extend(self._message(row) for row in rows)
            if got:
                for ids in chunks([m.delivery_tag for m in got]):
                    conn.execute(f"UPDATE messages SET owner = ? WHERE id IN "
                                 f"({','.join('?' * len(ids))})", [self.consumer_id, *ids])
                self._touch(conn, now)
        return got

    @staticmethod
    def _message(row: Sequence[Any]) -> Message:
        (tag, redelivered, queue, priority, headers, properties, ctype, cenc, exchange,
         routing_key, body) = row
        return Message(body=bytes(body), headers=json.loads(headers),
                       properties=json.loads(properties), content_type=ctype,
                       content_encoding=cenc, queue=queue, exchange=exchange,
                       routing_key=routing_key, priority=priority, delivery_tag=tag,
                       redelivered=bool(redelivered))

    def _touch(self, conn: Any, now: float) -> None:
        if now - self._seen_at < self.heartbeat_interval / 2:
            return
        conn.execute("INSERT INTO consumers (id, last_seen) VALUES (?, ?) ON CONFLICT(id)"
                     " DO UPDATE SET last_seen = excluded.last_seen", (self.consumer_id, now))
        self._seen_at = now

    def _recover(self, conn: Any, now: float) -> None:
        """Give back messages whose consumer stopped heartbeating."""
        self._recovered_at = now
        cutoff = now - self.lease_timeout
        stale = conn.execute(
            "SELECT 1 FROM messages WHERE owner IS NOT NULL AND owner NOT IN"
            " (SELECT id FROM consumers WHERE last_seen >= ?) LIMIT 1", (cutoff,)).fetchone()
        if not stale:
            return
        with Transaction(conn):
            conn.execute(
                "UPDATE messages SET owner = NULL, redelivered = 1 WHERE owner IS NOT NULL"
                " AND owner NOT IN (SELECT id FROM consumers WHERE last_seen >= ?)", (cutoff,))
            conn.execute("DELETE FROM consumers WHERE last_seen < ?", (cutoff,))

    def heartbeat(self) -> None:
        now = time.time()
        self._seen_at = 0.0
        with Transaction(self.db.conn()) as conn:
            self._touch(conn, now)

    def ack(self, messages: Sequence[Message]) -> None:
        self._by_tag("DELETE FROM messages WHERE id IN ({})", messages)

    def reject(self, messages: Sequence[Message], requeue: bool) -> None:
        sql = ("UPDATE messages SET owner = NULL, redelivered = 1 WHERE id IN ({})" if requeue
               else "DELETE FROM messages WHERE id IN ({})")
        self._by_tag(sql, messages)

    def _by_tag(self, sql: str, messages: Sequence[Message]) -> None:
        tags = [m.delivery_tag for m in messages]
        if not tags:
            return
        with Transaction(self.db.conn()) as conn:
            for ids in chunks(tags):
                conn.execute(sql.format(",".join("?" * len(ids))), ids)

    # -- dead letters ---------------------------------------------------------------
    def dead_letter(self, message: Message, reason: str) -> None:
        with Transaction(self.db.conn()) as conn:
            conn.execute(f"INSERT INTO dead_letters ({COLUMNS}, reason, failed_at)"
                         f" SELECT {COLUMNS}, ?, ? FROM messages WHERE id = ?",
                         (reason, time.time(), message.delivery_tag))
            conn.execute("DELETE FROM messages WHERE id = ?", (message.delivery_tag,))

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = self.db.conn().execute(
            f"SELECT id, 0, {COLUMNS}, reason, failed_at FROM dead_letters ORDER BY id LIMIT ?",
            (limit,)).fetchall()
        out = []
        for row in rows:
            message = self._message(row[:-2])
            message.delivery_tag = None
            out.append(DeadLetter(row[0], message, row[-2], row[-1]))
        return out

    def replay_dead_letters(self, ids: Sequence[Any] | None = None) -> int:
        with Transaction(self.db.conn()) as conn:
            where, params = "", []
            if ids is not None:
                if not ids:
                    return 0
                where, params = f" WHERE id IN ({','.join('?' * len(ids))})", list(ids)
            conn.execute(f"INSERT INTO messages ({COLUMNS}) SELECT {COLUMNS} FROM dead_letters"
                         f"{where} ORDER BY id", params)
            return conn.execute(f"DELETE FROM dead_letters{where}", params).rowcount

    # -- management -----------------------------------------------------------------
    def purge(self, queues: Sequence[str]) -> int:
        with Transaction(self.db.conn()) as conn:
            return conn.execute(
                f"DELETE FROM messages WHERE owner IS NULL AND queue IN"
                f" ({','.join('?' * len(queues))})", list(queues)).rowcount

    def queue_size(self, queue: str) -> int:
        return self.db.conn().execute(
            "SELECT COUNT(*) FROM messages WHERE queue = ? AND owner IS NULL",
            (queue,)).fetchone()[0]
