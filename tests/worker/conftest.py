"""Fixtures shared by the worker's tests."""
from __future__ import annotations

import pytest

from corekit import Corekit


@pytest.fixture(params=["sqlite", "redis", "amqp"])
def app(request: pytest.FixtureRequest) -> Corekit:
    """The same test on each real broker."""
    return request.getfixturevalue(f"{request.param}_app")
