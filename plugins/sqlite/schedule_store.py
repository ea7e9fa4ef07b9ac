"""The ``sqlite://PATH`` schedule store: periodic tasks, their run state, the
beat leader's lease and the per-run claims, in the broker's own file.

URL forms are the transport's (``sqlite://`` is ``./corekit.sqlite3``), so by
default the beat keeps its state beside the messages it sends.  WAL mode and
one connection per thread (`Database`): any number of beat processes and
threads may share the file.

How it keeps the contract (`corekit.schedules.store`):

- every write moves one store-wide cursor (``corekit_beat_meta``) and stamps
  the rows it touched with it; `changes` reads ``version > cursor`` off an
  index, removals off tombstones, so it costs what changed, not what exists;
- `wait_for_change` reads the cursor (one primary-key lookup) every
  `WAIT_POLL` seconds: a change made by another process is seen within
  0.2 s, one made through the same store object at once;
- the lease and ``changed_at`` are timed by SQLite's clock (`SQL_NOW`), the
  clock of the one host whose processes share the file;
- `claim_runs` is one ``BEGIN IMMEDIATE`` transaction for the whole batch,
  fenced on the lease holder;
- `fire` with the SQLite transport on the same file claims, inserts the
  messages and marks them sent in that one transaction: a ``kill -9`` leaves
  either all of it or none.
"""
from __future__ import annotations

import math
import os
import random
import sqlite3
from typing import Any, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from corekit.plugins.sqlite.db import Database, Transaction, chunks, marks, path_from_url
from corekit.plugins.sqlite.schedule_rows import SCHEMA, select_entries
from corekit.plugins.sqlite.transport import SQL_NOW
from corekit.schedules.store import (Changes, CursorPoller, Run, ScheduleStore,
                                     StoredEntry, check_definition, check_holder, check_name,
                                     check_put, check_runs, check_takes)

#: How often `wait_for_change` reads the cursor (a change is seen within this).
WAIT_POLL = 0.2
#: Run records are kept this long, and at least the last `KEEP_RUNS` per entry.
KEEP_RUNS_SECONDS = 86_400.0
KEEP_RUNS = 100
#: One claim in this many also prunes its entry's old run records.
PRUNE_ONE_IN = 64
#: Tombstones of removed entries are kept this long; a cursor older than the
#: newest pruned one gets everything (as `load` would).
TOMBSTONE_SECONDS = 7 * 86_400.0

CURSOR = "SELECT value FROM corekit_beat_meta WHERE key = 'cursor'"
IS_NUMBER = "typeof({0}) IN ('integer', 'real')"
LIVE_LEASE = (f"SELECT 1 FROM corekit_beat_lease WHERE holder = ? AND expires > ?"
              f" AND {IS_NUMBER.format('expires')}")
#: A claim: the entry exists and its last run (None, or unreadable as a number,
#: which `load` reports as None) is before this one.
CLAIM = ("UPDATE corekit_beat_entries SET last_run_at = ?, last_task_id = ?,"
         " total_run_count = (CASE WHEN typeof(total_run_count) = 'integer'"
         " THEN total_run_count ELSE 0 END) + 1"
         " WHERE name = ? AND (last_run_at IS NULL OR last_run_at < ?"
         f" OR NOT {IS_NUMBER.format('last_run_at')})")
RECORD_RUN = ("INSERT OR REPLACE INTO corekit_beat_runs (name, scheduled_at, task_id,"
              " claimed_at, sent) VALUES (?, ?, ?, ?, ?)")
#: An entry's sent run records older than a day and beyond its newest 100.
PRUNE_RUNS = ("DELETE FROM corekit_beat_runs WHERE name = ?1 AND sent = 1 AND claimed_at < ?2"
              " AND scheduled_at < ?2 AND scheduled_at < (SELECT scheduled_at FROM"
              " corekit_beat_runs WHERE name = ?1 ORDER BY scheduled_at DESC LIMIT 1 OFFSET ?3)")
#: The taken marks of an entry's runs whose records are gone (pruned, removed).
PRUNE_TAKEN = ("DELETE FROM corekit_beat_taken WHERE name = ?1 AND scheduled_at < ?2 AND"
               " NOT EXISTS (SELECT 1 FROM corekit_beat_runs r WHERE r.name = ?1"
               " AND r.scheduled_at = corekit_beat_taken.scheduled_at)")
#: `take_runs`: mark a run that has a record, unless it is marked already.
TAKE_RUN = ("INSERT OR IGNORE INTO corekit_beat_taken (name, scheduled_at, send_id)"
            " SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM corekit_beat_runs"
            " WHERE name = ?1 AND scheduled_at = ?2)")
#: Its mark, as bytes (text another program wrote may not be UTF-8).
TAKEN_BY = ("SELECT CAST(send_id AS BLOB), typeof(send_id) FROM corekit_beat_taken"
            " WHERE name = ? AND scheduled_at = ?")


def _as_int(value: Any) -> int:
    return value if type(value) is int else 0


class SQLiteScheduleStore(ScheduleStore):
    """A schedule store in one SQLite file (see the module docstring)."""

    scheme = "sqlite"

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(url, options)
        self.path = path_from_url(url)
        self.db = Database(self.path, SCHEMA)
        self._poller = CursorPoller(WAIT_POLL)

    def close(self) -> None:
        self.db.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"

    # -- clock ---------------------------------------------------------------
    def now(self) -> float:
        return float(self.db.conn().execute(f"SELECT {SQL_NOW}").fetchone()[0])

    @staticmethod
    def _now(conn: sqlite3.Connection) -> float:
        return float(conn.execute(f"SELECT {SQL_NOW}").fetchone()[0])

    # -- definitions ---------------------------------------------------------
    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query in it sees one state of the file."""
        conn = self.db.conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def load(self) -> tuple[int, list[StoredEntry]]:
        with self._snapshot() as conn:
            return self._cursor(conn), select_entries(conn)

    def get(self, name: str) -> StoredEntry | None:
        check_name(name)
        found = select_entries(self.db.conn(), "WHERE name = ?", (name,))
        return found[0] if found else None

    def changes(self, cursor: int) -> Changes:
        if type(cursor) is not int:
            raise TypeError(f"schedule store cursor must be an int, got {type(cursor).__name__}")
        with self._snapshot() as conn:
            current = self._cursor(conn)
            if cursor == current:
                return Changes(current, [], [])
            horizon = _as_int((conn.execute("SELECT value FROM corekit_beat_meta"
                                            " WHERE key = 'horizon'").fetchone() or (0,))[0])
            if cursor > current or cursor < horizon:  # unknown: answer with everything
                return Changes(current, select_entries(conn), [])
            changed = select_entries(conn, "WHERE version > ? ORDER BY version", (cursor,))
            removed = [row[0] for row in conn.execute(
                "SELECT name FROM corekit_beat_removed WHERE version > ? ORDER BY version",
                (cursor,))]
            return Changes(current, changed, removed)

    def wait_for_change(self, cursor: int, timeout: float) -> bool:
        return self._poller.wait(lambda: self._cursor(self.db.conn()), cursor, timeout)

    @staticmethod
    def _cursor(conn: sqlite3.Connection) -> int:
        row = conn.execute(CURSOR).fetchone()
        return _as_int(row[0]) if row else 0

    def _next_version(self, conn: sqlite3.Connection) -> int:
        """Move the cursor, in the caller's write transaction; the new value."""
        version = self._cursor(conn) + 1
        conn.execute("INSERT OR REPLACE INTO corekit_beat_meta (key, value) VALUES ('cursor', ?)",
                     (version,))
        return version

    def _notify(self) -> None:
        self._poller.notify()

    def put(self, name: str, definition: str, source: str = "api") -> None:
        check_put(name, definition, source)
        with Transaction(self.db.conn()) as conn:
            self._put(conn, self._next_version(conn), self._now(conn), name, definition, source)
        self._notify()

    @staticmethod
    def _put(conn: sqlite3.Connection, version: int, now: float, name: str, definition: str,
             source: str) -> None:
        conn.execute(
            "INSERT INTO corekit_beat_entries (name, definition, source, total_run_count,"
            " changed_at, version) VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT (name) DO UPDATE SET"
            " definition = excluded.definition, source = excluded.source,"
            " changed_at = excluded.changed_at, version = excluded.version",
            (name, definition, source, now, version))
        conn.execute("DELETE FROM corekit_beat_removed WHERE name = ?", (name,))

    def remove(self, name: str) -> bool:
        check_name(name)
        with Transaction(self.db.conn()) as conn:
            found = self._remove(conn, [name])
        if found:
            self._notify()
        return bool(found)

    def _remove(self, conn: sqlite3.Connection, names: Sequence[str]) -> int:
        """Delete *names* (with their run records) and leave tombstones; how many existed."""
        gone = 0
        version: int | None = None
        now = self._now(conn)
        for part in chunks(list(names)):
            existing = [row[0] for row in conn.execute(
                f"SELECT name FROM corekit_beat_entries WHERE name IN ({marks(len(part))})", part)]
            if not existing:
                continue
            version = version or self._next_version(conn)
            in_list = f"name IN ({marks(len(existing))})"
            conn.execute(f"DELETE FROM corekit_beat_entries WHERE {in_list}", existing)
            conn.execute(f"DELETE FROM corekit_beat_runs WHERE {in_list}", existing)
            conn.execute(f"DELETE FROM corekit_beat_taken WHERE {in_list}", existing)
            conn.executemany("INSERT OR REPLACE INTO corekit_beat_removed (name, version,"
                             " removed_at) VALUES (?, ?, ?)",
                             [(n, version, now) for n in existing])
            gone += len(existing)
        if gone:
            self._prune_tombstones(conn, now)
        return gone

    @staticmethod
    def _prune_tombstones(conn: sqlite3.Connection, now: float) -> None:
        cutoff = now - TOMBSTONE_SECONDS
        newest = conn.execute("SELECT MAX(version) FROM corekit_beat_removed WHERE removed_at < ?",
                              (cutoff,)).fetchone()[0]
        if newest is not None:
            conn.execute("DELETE FROM corekit_beat_removed WHERE removed_at < ?", (cutoff,))
            conn.execute("INSERT OR REPLACE INTO corekit_beat_meta (key, value)"
                         " VALUES ('horizon', ?)", (newest,))

    def sync_config(self, definitions: Mapping[str, str]) -> None:
        for name, definition in definitions.items():
            check_name(name)
            check_definition(name, definition)
        with Transaction(self.db.conn()) as conn:
            stored = {name: (definition, source) for name, definition, source in conn.execute(
                "SELECT name, CAST(definition AS BLOB), source FROM corekit_beat_entries")}
            puts = [name for name, text in definitions.items()
                    if stored.get(name) != (text.encode(), "config")]
            gone = [name for name, (_, source) in stored.items()
                    if source == "config" and name not in definitions]
            if puts:
                version, now = self._next_version(conn), self._now(conn)
                for name in puts:
                    self._put(conn, version, now, name, definitions[name], "config")
            self._remove(conn, gone)
        if puts or gone:
            self._notify()

    # -- the leader lease ----------------------------------------------------
    def acquire_lease(self, holder: str, ttl: float) -> bool:
        check_holder(holder)
        if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or not (
                math.isfinite(ttl) and ttl > 0):
            raise ValueError(f"lease ttl must be a positive number of seconds, got {ttl!r}")
        with Transaction(self.db.conn()) as conn:
            now = self._now(conn)
            return conn.execute(
                "INSERT INTO corekit_beat_lease (id, holder, expires) VALUES (1, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET holder = excluded.holder,"
                " expires = excluded.expires WHERE holder = excluded.holder OR expires <= ?"
                f" OR NOT {IS_NUMBER.format('expires')}",
                (holder, now + ttl, now)).rowcount == 1

    def release_lease(self, holder: str) -> None:
        check_holder(holder)
        with Transaction(self.db.conn()) as conn:
            conn.execute("DELETE FROM corekit_beat_lease WHERE holder = ?", (holder,))

    def lease(self) -> tuple[str, float] | None:
        with self._snapshot() as conn:
            now = self._now(conn)
            row = conn.execute(
                "SELECT CAST(holder AS BLOB), expires FROM corekit_beat_lease WHERE expires > ?"
                f" AND {IS_NUMBER.format('expires')}", (now,)).fetchone()
        if row is None:
            return None
        holder = row[0].decode(errors="backslashreplace") if isinstance(row[0], bytes) else str(
            row[0])
        return holder, float(row[1]) - now

    # -- runs ----------------------------------------------------------------
    def claim_runs(self, holder: str, runs: Sequence[Run]) -> list[Run]:
        check_holder(holder)
        runs = check_runs(runs)
        if not runs:
            return []
        with Transaction(self.db.conn()) as conn:
            return self._claim(conn, holder, runs, sent=False)

    def _claim(self, conn: sqlite3.Connection, holder: str, runs: Sequence[Run], sent: bool
               ) -> list[Run]:
        """The claim step of `claim_runs`, in the caller's write transaction."""
        now = self._now(conn)
        if conn.execute(LIVE_LEASE, (holder, now)).fetchone() is None:
            return []
        claimed = []
        for run in runs:
            if conn.execute(CLAIM, (run.scheduled_at, run.task_id, run.name,
                                    run.scheduled_at)).rowcount == 1:
                conn.execute(RECORD_RUN, (run.name, run.scheduled_at, run.task_id, now, int(sent)))
                claimed.append(run)
                if random.randrange(PRUNE_ONE_IN) == 0:
                    self._prune_runs(conn, run.name, now)
        return claimed

    @staticmethod
    def _prune_runs(conn: sqlite3.Connection, name: str, now: float) -> int:
        """Drop *name*'s sent run records older than `KEEP_RUNS_SECONDS` beyond
        its newest `KEEP_RUNS`, and their taken marks: index ranges of that
        entry only."""
        pruned = int(conn.execute(PRUNE_RUNS, (name, now - KEEP_RUNS_SECONDS,
                                               KEEP_RUNS - 1)).rowcount)
        if pruned:
            conn.execute(PRUNE_TAKEN, (name, now - KEEP_RUNS_SECONDS))
        return pruned

    def confirm_runs(self, runs: Sequence[Run]) -> None:
        runs = check_runs(runs)
        if not runs:
            return
        with Transaction(self.db.conn()) as conn:
            conn.executemany("UPDATE corekit_beat_runs SET sent = 1 WHERE name = ?"
                             " AND scheduled_at = ?", [(r.name, r.scheduled_at) for r in runs])

    def unsent_runs(self) -> list[Run]:
        rows = self.db.conn().execute(
            "SELECT name, scheduled_at, task_id FROM corekit_beat_runs WHERE sent = 0"
            " ORDER BY claimed_at, scheduled_at, name").fetchall()
        return [Run(*row) for row in rows]

    def take_runs(self, runs: Sequence[tuple[str, float, str]]) -> list[bool]:
        runs = check_takes(runs)
        if not runs:
            return []
        taken = []
        with Transaction(self.db.conn()) as conn:
            for name, scheduled_at, send_id in runs:
                conn.execute(TAKE_RUN, (name, scheduled_at, send_id))
                row = conn.execute(TAKEN_BY, (name, scheduled_at)).fetchone()
                # a mark that is not text was written by another program: it drops nothing
                taken.append(row is None or row[1] != "text" or row[0] == send_id.encode())
        return taken

    def fire(self, holder: str, runs: Sequence[Run], transport: Any,
             make_messages: Callable[[Sequence[Run], bool], list[Any]],
             publish: Callable[[list[Any]], None]) -> list[Run]:
        if not self.shares_transport(transport):
            return super().fire(holder, runs, transport, make_messages, publish)
        check_holder(holder)
        runs = check_runs(runs)
        if not runs:
            return []
        transport.connect()  # its tables exist before we hold the write lock
        with Transaction(self.db.conn()) as conn:
            claimed = self._claim(conn, holder, runs, sent=True)
            if claimed:
                transport.insert_messages(conn, make_messages(claimed, False))
        return claimed

    def shares_transport(self, transport: Any) -> bool:
        """Whether *transport* is the SQLite transport on this very file."""
        from corekit.plugins.sqlite.transport import SQLiteTransport

        if not isinstance(transport, SQLiteTransport):
            return False
        try:
            return os.path.samefile(transport.path, self.path)
        except OSError:
            return transport.path == self.path

    def recent_runs(self, name: str | None = None, limit: int = 100) -> list[tuple[Run, bool]]:
        if name is not None:
            check_name(name)
        if type(limit) is not int:
            raise TypeError(f"recent_runs limit must be an int, got {type(limit).__name__}")
        if limit <= 0:
            return []
        where, params = ("WHERE name = ?", (name, limit)) if name is not None else ("", (limit,))
        rows = self.db.conn().execute(
            f"SELECT name, scheduled_at, task_id, sent FROM corekit_beat_runs {where}"
            " ORDER BY scheduled_at DESC, name LIMIT ?", params).fetchall()
        return [(Run(n, at, task_id), bool(sent)) for n, at, task_id, sent in rows]
