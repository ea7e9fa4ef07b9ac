"""Throwaway servers for the benchmarks, started the way the test suite
starts them (``tests/servers.py``): on loopback, on free ports, with their
own data directories, stopped when the ``with`` block ends.

```python
from servers import rabbitmq_server, redis_server

with redis_server() as redis, rabbitmq_server() as rabbit:
    redis.url            # redis://127.0.0.1:PORT/0
    redis.db_url(3)      # redis://127.0.0.1:PORT/3
    rabbit.url           # amqp://guest:guest@127.0.0.1:PORT/t1, a vhost of its own
    rabbit.fresh_url()   # another vhost nobody has used
```

A missing server binary ends the run with the package to install (the test
suite's helpers would skip a test instead).
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

TESTS = Path(__file__).resolve().parent.parent / "tests"
if str(TESTS) not in sys.path:
    sys.path.append(str(TESTS))


def _load_suite_servers() -> Any:
    """tests/servers.py under a name of its own: this module is ``servers`` too."""
    name = "corekit_tests_servers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TESTS / "servers.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_suite = _load_suite_servers()


class ServerUnavailable(RuntimeError):
    """A server binary is missing or the server did not start."""


class RedisHandle:
    """A running redis-server: `url` (database 0), `db_url(n)`, `version`."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.url: str = server.url

    def db_url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.server.port}/{db}"

    @property
    def version(self) -> str:
        import redis

        client = redis.Redis(port=self.server.port)
        try:
            return str(client.info("server")["redis_version"])
        finally:
            client.close()


class RabbitHandle:
    """A running RabbitMQ node: `url` is a vhost fresh when the block began;
    `fresh_url()` gives another one each call; `version` asks the node."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.url: str = server.fresh_url()

    def fresh_url(self) -> str:
        return str(self.server.fresh_url())

    @property
    def version(self) -> str:
        import amqp

        connection = amqp.Connection(f"127.0.0.1:{self.server.port}", connect_timeout=5)
        try:
            connection.connect()
            value = connection.server_properties.get("version", "?")
            return value.decode() if isinstance(value, bytes) else str(value)
        finally:
            connection.close()


@contextmanager
def _suite_server(start: Any, *args: Any) -> Iterator[Any]:
    """Run one of the suite's generator fixtures as a context manager,
    turning its skip (a missing binary) into `ServerUnavailable`."""
    import pytest

    try:
        with contextmanager(start)(*args) as server:
            yield server
    except pytest.skip.Exception as exc:
        raise ServerUnavailable(str(exc.msg)) from None
    except pytest.fail.Exception as exc:
        raise ServerUnavailable(str(exc.msg)) from None


@contextmanager
def redis_server(directory: Path | None = None) -> Iterator[RedisHandle]:
    """A redis-server in *directory* (default: a temporary one, removed after)."""
    if directory is not None:
        with _suite_server(_suite.start_redis, Path(directory)) as server:
            yield RedisHandle(server)
        return
    with tempfile.TemporaryDirectory(prefix="corekit-bench-redis-") as tmp:
        with _suite_server(_suite.start_redis, Path(tmp)) as server:
            yield RedisHandle(server)


@contextmanager
def rabbitmq_server() -> Iterator[RabbitHandle]:
    """A RabbitMQ node of its own (about 10 s to start); stopped and its
    directory removed at the end."""
    try:
        with _suite_server(_suite.start_rabbitmq) as server:
            yield RabbitHandle(server)
    except subprocess.TimeoutExpired as exc:
        raise ServerUnavailable(f"rabbitmqctl did not answer: {exc}") from None
