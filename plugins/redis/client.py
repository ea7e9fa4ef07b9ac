"""Connecting to Redis from a corekit URL, and loading the Lua scripts."""
from __future__ import annotations

from importlib import resources
from typing import Any


def connect(url: str) -> Any:
    """A redis-py client for ``redis://``, ``rediss://`` or
    ``redis+socket:///path/to/socket`` (redis-py's ``unix://``)."""
    import redis

    if url.startswith("redis+socket://"):
        url = "unix://" + url[len("redis+socket://"):]
    return redis.Redis.from_url(url, health_check_interval=30)


def script(client: Any, name: str) -> Any:
    """A registered Lua script shipped as package data (``lua/NAME.lua``)."""
    source = resources.files("corekit.plugins.redis").joinpath("lua", f"{name}.lua").read_text()
    return client.register_script(source)
