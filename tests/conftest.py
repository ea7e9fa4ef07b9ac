"""Fixtures shared by the whole suite."""
from __future__ import annotations

import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from corekit import Corekit
from corekit.pluginmanager import PluginManager
from helpers import run_cli
from servers import RabbitServer, RedisServer, start_rabbitmq, start_redis


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C reaches the programs the tests start (they stop them with
    SIGINT, as a user would): a suite started in the background by a
    non-interactive shell inherits SIGINT ignored, and an ignored signal
    stays ignored across exec, in every child."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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


@pytest.fixture(params=["memory", "sqlite", "redis", "amqp"])
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


@pytest.fixture(scope="session")
def rabbitmq_server() -> Iterator[RabbitServer]:
    """One rabbitmq-server for the whole session (per xdist worker)."""
    yield from start_rabbitmq()


@pytest.fixture
def amqp_url(rabbitmq_server: RabbitServer) -> str:
    """A vhost of the session's RabbitMQ that no other test has used."""
    return rabbitmq_server.fresh_url()


@pytest.fixture
def amqp_app(amqp_url: str, tmp_path: Path) -> Iterator[Corekit]:
    """An app on a fresh RabbitMQ vhost, results in SQLite (rpc:// has its own tests)."""
    app = Corekit("tests", broker=amqp_url, backend=f"sqlite://{tmp_path / 'results.sqlite3'}",
                  broker_heartbeat=0.2, broker_lease_timeout=2.0, task_queue_max_priority=9)
    yield app
    app.close()


@pytest.fixture
def make_app() -> Iterator[Any]:
    """``make_app(manager, **config)``: an app on a private in-memory broker and
    backend whose plugins are *manager*'s (plugin_hooks_helpers.manager_with
    makes one); each is closed after the test."""
    apps: list[Corekit] = []

    def make(manager: PluginManager, **config: Any) -> Corekit:
        name = uuid.uuid4().hex
        app = Corekit("tests", broker=f"memory://{name}", backend=f"memory://{name}",
                      plugin_manager=manager, **config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()
