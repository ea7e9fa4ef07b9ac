"""corekit.testing, used the way a user tests their own tasks: the fixtures
come from the installed pytest plugin, not from a conftest."""
from __future__ import annotations

from typing import Any

import pytest

from corekit import Corekit
from corekit.testing import start_worker


def test_app_and_worker_fixtures(corekit_app: Corekit, corekit_worker: Any) -> None:
    @corekit_app.task
    def mul(x: int, y: int) -> int:
        return x * y

    assert mul.delay(6, 7).get(timeout=10) == 42
    assert corekit_app.conf.broker.startswith("memory://")


def test_eager_app_runs_inline_and_propagates(corekit_eager_app: Corekit) -> None:
    @corekit_eager_app.task
    def boom() -> None:
        raise LookupError("eager")

    @corekit_eager_app.task
    def add(x: int, y: int) -> int:
        return x + y

    assert add.delay(1, 2).get() == 3
    with pytest.raises(LookupError):
        boom.delay()


@pytest.fixture
def corekit_config() -> dict[str, Any]:
    return {"task_default_queue": "custom", "task_serializer": "msgpack",
            "accept_content": ["msgpack"]}


def test_config_fixture_overrides(corekit_app: Corekit) -> None:
    assert corekit_app.conf.task_default_queue == "custom"

    @corekit_app.task
    def echo(x: Any) -> Any:
        return x

    with start_worker(corekit_app, queues=["custom"], pool="solo") as worker:
        assert worker.pool_name == "solo"
        assert echo.delay({"k": [1]}).get(timeout=10) == {"k": [1]}
