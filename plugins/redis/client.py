"""Connecting to Redis from a corekit URL, and running the Lua scripts."""
from __future__ import annotations

import threading
from importlib import resources
from typing import Any, Sequence


def connect(url: str, **options: Any) -> Any:
    """A redis-py client for ``redis://``, ``rediss://`` or
    ``redis+socket:///path/to/socket`` (redis-py's ``unix://``)."""
    import redis

    if url.startswith("redis+socket://"):
        url = "unix://" + url[len("redis+socket://"):]
    return redis.Redis.from_url(url, health_check_interval=30, **options)


class Lane:
    """Connections of their own, configured like *client*'s pool (host,
    credentials, database, TLS, socket), for the scripts on the hot path.

    A script call is one packed command written and one reply read on a
    connection taken from a free list: redis-py's client-level call
    (argument handling, its pool's checkout and release, retry wrappers and
    its metrics hooks) costs about as much again as the loopback round trip
    itself.  A connection is never shared by two threads (or green threads)
    at once; one that fails is dropped, and a call that failed for the
    connection is tried once more on a new one, as redis-py does."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._free: list[Any] = []
        self._all: list[Any] = []
        self._lock = threading.Lock()
        try:
            from hiredis import pack_command
        except ImportError:  # redis-py packs when hiredis is missing
            pack_command = None
        self._pack = pack_command

    def call(self, *args: Any) -> Any:
        from redis.exceptions import ConnectionError, TimeoutError

        try:
            return self._call(args)
        except (ConnectionError, TimeoutError):
            return self._call(args)

    def _call(self, args: tuple[Any, ...]) -> Any:
        try:
            conn = self._free.pop()
        except IndexError:
            conn = self.client.connection_pool.make_connection()
            with self._lock:
                self._all.append(conn)
        try:
            packed = [self._pack(args)] if self._pack else conn.pack_command(*args)
            conn.send_packed_command(packed)
            reply = conn.read_response()
        except BaseException as exc:
            from redis.exceptions import ResponseError

            if isinstance(exc, ResponseError):  # the command failed, the connection is fine
                self._free.append(conn)
            else:
                self._drop(conn)
            raise
        self._free.append(conn)
        return reply

    def _drop(self, conn: Any) -> None:
        conn.disconnect()
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)

    def close(self) -> None:
        with self._lock:
            conns, self._all, self._free = self._all, [], []
        for conn in conns:
            conn.disconnect()


def script(lane: Lane, name: str) -> LuaScript:
    """A Lua script shipped as package data (``lua/NAME.lua``)."""
    source = resources.files("corekit.plugins.redis").joinpath("lua", f"{name}.lua").read_text()
    return LuaScript(lane, source)


class LuaScript:
    """``EVALSHA`` on a `Lane`, loading the script when the server does not
    know it (first use, a restart)."""

    __slots__ = ("lane", "source", "sha")

    def __init__(self, lane: Lane, source: str) -> None:
        import hashlib

        self.lane = lane
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return self.lane.call("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            self.sha = self.lane.client.script_load(self.source)
            return self.lane.call("EVALSHA", self.sha, len(keys), *keys, *args)
