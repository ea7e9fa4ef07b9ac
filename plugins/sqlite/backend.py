"""The ``sqlite://PATH`` result backend (same URL forms as the transport;
it may share the transport's file)."""
from __future__ import annotations

import time
from typing import Any, Sequence

from corekit.backend import ResultBackend
from corekit.plugins.sqlite.db import Database, Transaction, path_from_url

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    task_id TEXT PRIMARY KEY,
    meta BLOB NOT NULL,
    status TEXT NOT NULL,
    date_done REAL NOT NULL,
    expires_at REAL);
CREATE INDEX IF NOT EXISTS results_expiry ON results (expires_at) WHERE expires_at IS NOT NULL
"""
CLEANUP_EVERY = 60.0


class SQLiteBackend(ResultBackend):
    scheme = "sqlite"

    def __init__(self, url: str, codecs: Any, options: Any = None) -> None:
        super().__init__(url, codecs, options)
        self.db = Database(path_from_url(url), SCHEMA)
        self._cleaned_at = time.time()

    def _get(self, task_id: str) -> bytes | None:
        row = self.db.conn().execute(
            "SELECT meta FROM results WHERE task_id = ? AND (expires_at IS NULL OR"
            " expires_at > ?)", (task_id, time.time())).fetchone()
        return bytes(row[0]) if row else None

    def _set_many(self, items: Sequence[tuple[str, bytes, str]]) -> None:
        now = time.time()
        expires_at = now + self.expires if self.expires else None
        with Transaction(self.db.conn()) as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO results (task_id, meta, status, date_done, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [(task_id, data, status, now, expires_at) for task_id, data, status in items])
        if now - self._cleaned_at > CLEANUP_EVERY:
            self.cleanup()

    def _delete(self, task_id: str) -> None:
        with Transaction(self.db.conn()) as conn:
            conn.execute("DELETE FROM results WHERE task_id = ?", (task_id,))

    def cleanup(self) -> int:
        self._cleaned_at = time.time()
        with Transaction(self.db.conn()) as conn:
            return conn.execute("DELETE FROM results WHERE expires_at <= ?",
                                (self._cleaned_at,)).rowcount

    def close(self) -> None:
        self.db.close()

    def describe(self) -> str:
        return f"{super().describe()} ({self.db.path})"
