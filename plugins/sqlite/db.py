"""Opening a SQLite file the way every corekit process must: WAL, a busy
timeout, one connection per thread, nothing carried across ``fork``.

URL forms (shared by the transport and the result backend):

- ``sqlite://`` is ``corekit.sqlite3`` in the current working directory;
- ``sqlite://relative/file.db`` is relative to the current working directory;
- ``sqlite:///abs/path.db`` is absolute.

The path is made absolute when the URL is parsed, so a later ``chdir`` does
not move the broker.  ``sqlite://:memory:`` is refused: each connection would
get a database of its own.
"""
from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
import weakref
from typing import Any, Sequence, TypeVar

from corekit.exceptions import ImproperlyConfigured

DEFAULT_FILE = "corekit.sqlite3"
BUSY_TIMEOUT_MS = 30_000
#: SQLite allows 32766 bound parameters since 3.32; stay far below on old builds too.
CHUNK = 500

T = TypeVar("T")

_databases: weakref.WeakSet[Database] = weakref.WeakSet()


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced, so a thread that ends
    takes its connection with it instead of leaking it until `close`."""


def path_from_url(url: str) -> str:
    """The absolute file path a ``sqlite://`` URL names (see the module doc)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme != "sqlite":
        raise ImproperlyConfigured(f"not a sqlite URL: {url!r}")
    path = rest.split("?", 1)[0] or DEFAULT_FILE
    if path == ":memory:":
        raise ImproperlyConfigured("sqlite://:memory: cannot be shared between connections; "
                                   "use memory:// for an in-process broker")
    return os.path.abspath(path)


class Database:
    """Per-thread connections to one file.  The schema is created (idempotent,
    inside a write transaction, so racing processes agree) by the first
    connection; `close` closes them all and later calls reconnect lazily."""

    def __init__(self, path: str, schema: str) -> None:
        self.path = path
        self.statements = [s for s in (p.strip() for p in schema.split(";")) if s]
        self.names = re.findall(r"IF NOT EXISTS (\w+)", schema)
        self._local = threading.local()
        self._conns: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._schema_ready = False
        _databases.add(self)

    def conn(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._lock:
                self._conns.add(conn)
        return conn

    def _open(self) -> _Connection:
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                               isolation_level=None, check_same_thread=False,
                               factory=_Connection)
        try:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            _use_wal(conn)
            # WAL + NORMAL survives a crashed process; only a power cut may lose
            # the last commits, the usual trade for a broker on local disk.
            conn.execute("PRAGMA synchronous=NORMAL")
            if not self._schema_ready:
                self._create_schema(conn)
                self._schema_ready = True
        except BaseException:
            conn.close()
            raise
        return conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        """Create what is missing.  The lock-free look first spares a process
        joining a busy broker from queueing for the write lock."""
        found = conn.execute(f"SELECT COUNT(*) FROM sqlite_master WHERE name IN"
                             f" ({marks(len(self.names))})", self.names).fetchone()[0]
        if found == len(self.names):
            return
        with Transaction(conn):
            for statement in self.statements:
                conn.execute(statement)

    def close(self) -> None:
        """Close every thread's connection; the next call reconnects."""
        with self._lock:
            conns, self._conns = list(self._conns), weakref.WeakSet()
            self._local = threading.local()
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    def _forget_after_fork(self) -> None:
        # The parent's connections (and their locks) are not ours: drop them
        # without closing, as SQLite asks, and reconnect on first use.
        self._local = threading.local()
        self._conns = weakref.WeakSet()
        self._lock = threading.Lock()


def _after_fork_in_child() -> None:
    for db in list(_databases):
        db._forget_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL (it stays so).  Switching needs an exclusive
    lock and SQLite does not run the busy handler for it, so processes
    opening a fresh file together retry here instead of failing."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


class Transaction:
    """``with Transaction(conn):`` is ``BEGIN IMMEDIATE`` ... ``COMMIT``, or
    ``ROLLBACK`` on error.  IMMEDIATE takes the write lock up front, so two
    writers wait on the busy timeout instead of failing on upgrade."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")


def chunks(items: Sequence[T], size: int = CHUNK) -> list[Sequence[T]]:
    """Slices small enough for an ``IN (?, ?, ...)`` list."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def marks(n: int) -> str:
    """``?,?,?`` for *n* parameters."""
    return ",".join("?" * n)
