"""Contract suites: each plugin kind's tests run against every installed
implementation this suite knows how to reach."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from corekit.pluginmanager import default_manager
from corekit.serialization import Codecs

PM = default_manager()


def _memory_url(tmp_path: Path) -> str:
    return f"memory://{uuid.uuid4().hex}"


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'contract.sqlite3'}"


#: How to make a URL for each scheme; brokers that need a server join when
#: their fixtures land (issue 3).
URLS: dict[str, Callable[[Path], str]] = {"memory": _memory_url, "sqlite": _sqlite_url}


def _schemes(kind: str) -> list[Any]:
    return [pytest.param(s, marks=pytest.mark.skipif(
                s not in URLS, reason=f"no server fixture for {s}:// in this suite yet"))
            for s in sorted(PM.registry(kind))]


@pytest.fixture
def codecs() -> Codecs:
    return Codecs(PM.registry("serializers").values(), PM.registry("compressors").values())


@pytest.fixture(params=_schemes("transports"))
def make_transport(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Build transports of one kind sharing one broker."""
    url = URLS[request.param](tmp_path)
    made: list[Any] = []

    def make(**options: Any) -> Any:
        transport = PM.get("transports", request.param)(url, options)
        transport.connect()
        made.append(transport)
        return transport

    yield make
    for t in made:
        t.close()


@pytest.fixture
def transport(make_transport: Callable[..., Any]) -> Any:
    return make_transport()


@pytest.fixture(params=_schemes("result_backends"))
def backend(request: pytest.FixtureRequest, tmp_path: Path, codecs: Codecs) -> Iterator[Any]:
    url = URLS[request.param](tmp_path)
    b = PM.get("result_backends", request.param)(url, codecs, {"result_expires": 3600})
    yield b
    b.close()
