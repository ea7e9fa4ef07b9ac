"""Connecting to Redis from a corekit URL, and loading the Lua scripts."""
from __future__ import annotations

from importlib import resources
from typing import Any, Sequence


def connect(url: str) -> Any:
    """A redis-py client for ``redis://``, ``rediss://`` or
    ``redis+socket:///path/to/socket`` (redis-py's ``unix://``)."""
    import redis

    if url.startswith("redis+socket://"):
        url = "unix://" + url[len("redis+socket://"):]
    return redis.Redis.from_url(url, health_check_interval=30)


def script(client: Any, name: str) -> LuaScript:
    """A Lua script shipped as package data (``lua/NAME.lua``)."""
    source = resources.files("corekit.plugins.redis").joinpath("lua", f"{name}.lua").read_text()
    return LuaScript(client, source)


class LuaScript:
    """``EVALSHA`` straight through ``execute_command`` (redis-py's Script
    goes through several wrappers per call: a tenth of a delay()), loading
    the script when the server does not know it (first use, a restart)."""

    __slots__ = ("client", "source", "sha")

    def __init__(self, client: Any, source: str) -> None:
        import hashlib

        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return self.client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            self.sha = self.client.script_load(self.source)
            return self.client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
