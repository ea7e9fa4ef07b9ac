"""Opening a SQLite file the way every corekit process must: WAL, a busy
timeout, one connection per thread."""
from __future__ import annotations

import os
import sqlite3
import threading

from corekit.exceptions import ImproperlyConfigured

DEFAULT_FILE = "corekit.sqlite3"
BUSY_TIMEOUT_MS = 30_000


def path_from_url(url: str) -> str:
    """``sqlite://`` -> ``./corekit.sqlite3``; ``sqlite://rel/x.db`` -> relative
    to the working directory; ``sqlite:///abs/x.db`` -> absolute."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme != "sqlite":
        raise ImproperlyConfigured(f"not a sqlite URL: {url!r}")
    path = rest.split("?", 1)[0] or DEFAULT_FILE
    if path == ":memory:":
        raise ImproperlyConfigured("sqlite://:memory: cannot be shared between connections; "
                                   "use memory:// for an in-process broker")
    return os.path.abspath(path)


class Database:
    """Per-thread connections to one file, all closed by `close`."""

    def __init__(self, path: str, schema: str) -> None:
        self.path = path
        self.schema = schema
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _open(self) -> sqlite3.Connection:
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                               isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        for statement in filter(str.strip, self.schema.split(";")):
            conn.execute(statement)
        conn.execute("COMMIT")
        return conn

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()


class Transaction:
    """``with Transaction(conn):`` -- BEGIN IMMEDIATE ... COMMIT/ROLLBACK."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def chunks(items: list, size: int = 500) -> list[list]:  # type: ignore[type-arg]
    return [items[i:i + size] for i in range(0, len(items), size)]
