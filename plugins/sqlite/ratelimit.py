"""Token buckets shared by every worker on one SQLite file (global rate limits)."""
from __future__ import annotations

import sqlite3
import time

SCHEMA = """
CREATE TABLE IF NOT EXISTS rate_buckets (
    key TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated REAL NOT NULL)
"""


def take_tokens(conn: sqlite3.Connection, key: str, rate: float, capacity: float,
                wanted: int) -> tuple[int, float]:
    """In the caller's write transaction: ``(granted, seconds until the next)``."""
    now = time.time()
    row = conn.execute("SELECT tokens, updated FROM rate_buckets WHERE key = ?",
                       (key,)).fetchone()
    tokens = capacity if row is None else min(capacity,
                                              row[0] + max(0.0, now - row[1]) * rate)
    granted = min(wanted, int(tokens))
    tokens -= granted
    conn.execute("INSERT INTO rate_buckets (key, tokens, updated) VALUES (?, ?, ?) "
                 "ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, "
                 "updated = excluded.updated", (key, tokens, now))
    return granted, max(0.0, (1.0 - tokens) / rate)
