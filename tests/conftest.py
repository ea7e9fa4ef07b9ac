"""Fixtures shared by the whole suite."""
from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from corekit import Corekit
from helpers import run_cli
from servers import RedisServer, start_redis


@pytest.fixture
def memory_app() -> Iterator[Corekit]:
    """An app on a private in-memory broker and backend."""
    name = uuid.uuid4().hex
    app = Corekit("tests", broker=f"memory://{name}", backend=f"memory://{name}")
    yield app
    app.close()


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[Corekit]:
    """An app on a SQLite file of its own."""
    url = f"sqlite://{tmp_path / 'broker.sqlite3'}"
    app = Corekit("tests", broker=url, backend=url, broker_heartbeat=0.2,
                  broker_lease_timeout=2.0)
    yield app
    app.close()


@pytest.fixture
def redis_app(redis_url: str) -> Iterator[Corekit]:
    """An app on the session's Redis (emptied), short leases."""
    app = Corekit("tests", broker=redis_url, backend=redis_url, broker_heartbeat=0.2,
                  broker_lease_timeout=2.0)
    yield app
    app.close()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def any_app(request: pytest.FixtureRequest) -> Corekit:
    """Each kernel behaviour on every transport with a fixture."""
    return request.getfixturevalue(f"{request.param}_app")


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the whole session (per xdist worker)."""
    yield from start_redis(tmp_path_factory.mktemp("redis"))


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    redis_server.flush()
    return redis_server.url
