"""The ``sqlite://PATH`` result backend.

Same URL forms as the transport (see `corekit.plugins.sqlite.db`); it may
share the transport's file, since it keeps to its own ``results`` and
``counters`` tables.
Waiting for a result uses the contract's polling `wait_for`: a read of one
primary-key row is cheap and there is nothing to subscribe to in SQLite.
"""
from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any, Mapping, Sequence

from corekit.result_backend import ResultBackend
from corekit.plugins.sqlite.db import Database, Transaction, path_from_url
from corekit.serialization import Codecs

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    task_id TEXT PRIMARY KEY,
    meta BLOB NOT NULL,
    status TEXT NOT NULL,
    date_done REAL NOT NULL,
    expires_at REAL);
CREATE INDEX IF NOT EXISTS results_expiry ON results (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL,
    expires_at REAL);
CREATE TABLE IF NOT EXISTS revocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    entry TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS revocations_at ON revocations (at)
"""
REVOKES_EXPIRE = 10800.0
#: Expired rows are invisible at once; `_set_many` deletes them this often.
CLEANUP_EVERY = 60.0


def _seconds(expires: Any) -> float | None:
    """``result_expires`` as seconds; None or 0 means results never expire."""
    if isinstance(expires, timedelta):
        expires = expires.total_seconds()
    return float(expires) if expires else None


class SQLiteBackend(ResultBackend):
    """Task metas in one table, keyed by task id."""

    scheme = "sqlite"

    def __init__(self, url: str, codecs: Codecs, options: Mapping[str, Any] | None = None
                 ) -> None:
        super().__init__(url, codecs, options)
        self.path = path_from_url(url)
        self.db = Database(self.path, SCHEMA)
        self._cleanup_at = time.time() + CLEANUP_EVERY

    def _get(self, task_id: str) -> bytes | None:
        row = self.db.conn().execute(
            "SELECT meta FROM results WHERE task_id = ?"
            " AND (expires_at IS NULL OR expires_at > ?)", (task_id, time.time())).fetchone()
        return bytes(row[0]) if row else None

    def _get_many(self, task_ids: Sequence[str]) -> list[bytes | None]:
        found: dict[str, bytes] = {}
        conn, now = self.db.conn(), time.time()
        for start in range(0, len(task_ids), 500):  # SQLite's bound-parameter limit
            part = list(task_ids[start:start + 500])
            marks = ", ".join("?" * len(part))
            found.update((row[0], bytes(row[1])) for row in conn.execute(
                f"SELECT task_id, meta FROM results WHERE task_id IN ({marks})"
                " AND (expires_at IS NULL OR expires_at > ?)", (*part, now)))
        return [found.get(task_id) for task_id in task_ids]

    def _set_many(self, items: Sequence[tuple[str, bytes, str]]) -> None:
        if not items:
            return
        now = time.time()
        ttl = _seconds(self.expires)
        expires_at = now + ttl if ttl else None
        with Transaction(self.db.conn()) as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO results (task_id, meta, status, date_done, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [(task_id, data, status, now, expires_at) for task_id, data, status in items])
        if now >= self._cleanup_at:
            self.cleanup()

    def _delete(self, task_id: str) -> None:
        with Transaction(self.db.conn()) as conn:
            conn.execute("DELETE FROM results WHERE task_id = ?", (task_id,))

    def incr(self, key: str, amount: int = 1) -> int:
        # One write transaction: processes queue for the write lock, so each
        # reads back the value its own update made.
        now = time.time()
        ttl = _seconds(self.expires)
        with Transaction(self.db.conn()) as conn:
            conn.execute(
                "INSERT INTO counters (key, value, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at,"
                " value = CASE WHEN expires_at <= ? THEN excluded.value"
                " ELSE value + excluded.value END",
                (key, amount, now + ttl if ttl else None, now))
            row = conn.execute("SELECT value FROM counters WHERE key = ?", (key,)).fetchone()
        return int(row[0])

    def get_counter(self, key: str) -> int:
        row = self.db.conn().execute(
            "SELECT value FROM counters WHERE key = ?"
            " AND (expires_at IS NULL OR expires_at > ?)", (key, time.time())).fetchone()
        return int(row[0]) if row else 0

    def delete_counter(self, key: str) -> None:
        with Transaction(self.db.conn()) as conn:
            conn.execute("DELETE FROM counters WHERE key = ?", (key,))

    def add_revocations(self, entries: Sequence[Mapping[str, Any]]) -> None:
        keep = float(self.options.get("revokes_expire", REVOKES_EXPIRE))
        with Transaction(self.db.conn()) as conn:
            conn.executemany("INSERT INTO revocations (at, entry) VALUES (?, ?)",
                             [(e["at"], json.dumps(dict(e), sort_keys=True)) for e in entries])
            conn.execute("DELETE FROM revocations WHERE at < ?", (time.time() - keep,))

    def revocations(self, since: float) -> list[dict[str, Any]]:
        rows = self.db.conn().execute(
            "SELECT entry FROM revocations WHERE at >= ? ORDER BY id", (since,)).fetchall()
        return [json.loads(row[0]) for row in rows]

    def cleanup(self) -> int:
        now = time.time()
        self._cleanup_at = now + CLEANUP_EVERY
        with Transaction(self.db.conn()) as conn:
            return sum(int(conn.execute(f"DELETE FROM {table} WHERE expires_at <= ?",
                                        (now,)).rowcount) for table in ("results", "counters"))

    def close(self) -> None:
        self.db.close()

    def describe(self) -> str:
        return f"{super().describe()} ({self.path})"
