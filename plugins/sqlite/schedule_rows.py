"""The schedule store's tables, and stored rows to `StoredEntry` objects for
rows anyone wrote.

A row written by corekit always converts; one written by another program
(the sqlite3 shell, a hand edit) may hold anything.  Nothing here raises for
it: a number column that holds no number reads as None (``last_run_at``) or
0 (``total_run_count``, ``changed_at``); text that is not UTF-8 is decoded
with backslash escapes; a definition is returned as stored, for the beat to
decode and report.
"""
from __future__ import annotations

import sqlite3
from typing import Any, Sequence

from corekit.schedules.store import StoredEntry

#: ``version`` is the store-wide cursor value of the write that last touched
#: the row: `changes` reads ``version > cursor`` off its index.  Removed names
#: leave a tombstone with the removal's version (pruned after `TOMBSTONE_DAYS`).
#: Run records are keyed by the run's identity ``(name, scheduled_at)``; a
#: run a worker took (`take_runs`) has a row in ``corekit_beat_taken`` beside
#: its record, dropped with it.
SCHEMA = """
CREATE TABLE IF NOT EXISTS corekit_beat_entries (
    name TEXT PRIMARY KEY NOT NULL,
    definition TEXT,
    source TEXT,
    last_run_at REAL,
    last_task_id TEXT,
    total_run_count INTEGER DEFAULT 0,
    changed_at REAL,
    version INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS corekit_beat_entries_version ON corekit_beat_entries (version);
CREATE TABLE IF NOT EXISTS corekit_beat_removed (
    name TEXT PRIMARY KEY NOT NULL,
    version INTEGER NOT NULL,
    removed_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS corekit_beat_removed_version ON corekit_beat_removed (version);
CREATE INDEX IF NOT EXISTS corekit_beat_removed_at ON corekit_beat_removed (removed_at);
CREATE TABLE IF NOT EXISTS corekit_beat_meta (
    key TEXT PRIMARY KEY NOT NULL,
    value);
CREATE TABLE IF NOT EXISTS corekit_beat_lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS corekit_beat_runs (
    name TEXT NOT NULL,
    scheduled_at REAL NOT NULL,
    task_id TEXT NOT NULL,
    claimed_at REAL NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, scheduled_at));
CREATE INDEX IF NOT EXISTS corekit_beat_runs_time ON corekit_beat_runs (scheduled_at);
CREATE INDEX IF NOT EXISTS corekit_beat_runs_unsent ON corekit_beat_runs (claimed_at)
    WHERE sent = 0;
CREATE TABLE IF NOT EXISTS corekit_beat_taken (
    name TEXT NOT NULL,
    scheduled_at REAL NOT NULL,
    send_id TEXT NOT NULL,
    PRIMARY KEY (name, scheduled_at));
"""

#: Entry columns in `StoredEntry` order.
COLUMNS = ("name", "definition", "source", "last_run_at", "last_task_id", "total_run_count",
           "changed_at")
_TEXT = frozenset({"name", "definition", "source", "last_task_id"})
#: The same, text read as bytes: sqlite3 fails a whole query on one TEXT
#: value that is not UTF-8, so such a query is run again with these.
CAST_COLUMNS = ", ".join(f"CAST({c} AS BLOB)" if c in _TEXT else c for c in COLUMNS)
PLAIN_COLUMNS = ", ".join(COLUMNS)


def select_entries(conn: sqlite3.Connection, where: str = "", params: Sequence[Any] = ()
                   ) -> list[StoredEntry]:
    """The entries ``WHERE`` *where* picks (every one if empty), converted leniently."""
    sql = f"SELECT {{}} FROM corekit_beat_entries {where}"
    try:
        rows = conn.execute(sql.format(PLAIN_COLUMNS), params).fetchall()
    except sqlite3.OperationalError as exc:
        if "decode" not in str(exc):
            raise
        rows = conn.execute(sql.format(CAST_COLUMNS), params).fetchall()
    return [entry(row) for row in rows]


def entry(row: Sequence[Any]) -> StoredEntry:
    """The `StoredEntry` of a row in `COLUMNS` order, whatever it holds."""
    name, definition, source, last_run_at, task_id, count, changed_at = row
    return StoredEntry(_text(name), _text(definition), _text(source), _number(last_run_at),
                       None if task_id is None else _text(task_id), _count(count),
                       _number(changed_at) or 0.0)


def _text(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, bytes):
        return value.decode(errors="backslashreplace")
    return "" if value is None else str(value)


def _number(value: Any) -> float | None:
    if type(value) in (int, float):
        return float(value)
    return None


def _count(value: Any) -> int:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    return 0
