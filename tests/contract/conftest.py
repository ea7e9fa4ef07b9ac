"""Contract suites: each plugin kind's tests run against every installed
implementation this suite knows how to reach.

Transports and result backends are parametrized over every scheme the
plugin manager knows.  A scheme with no URL factory in `URLS` (the
server-backed ones, until their fixtures land) is skipped here with the
reason, never silently left out.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from corekit.result_backend import ResultBackend
from corekit.pluginmanager import default_manager
from corekit.serialization import Codecs
from corekit.transport import Transport

PM = default_manager()


def _memory_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"memory://{uuid.uuid4().hex}"


def _sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'contract.sqlite3'}"


def _redis_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(request.getfixturevalue("redis_url"))


def _redis_socket_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    request.getfixturevalue("redis_url")  # empties the server for this test
    return str(request.getfixturevalue("redis_server").socket_url)


def _rediss_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    request.getfixturevalue("redis_url")  # empties the server for this test
    return str(request.getfixturevalue("redis_server").tls_url)


def _amqp_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(request.getfixturevalue("amqp_url"))  # a vhost of its own


def _amqps_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(request.getfixturevalue("rabbitmq_server").fresh_tls_url())


#: How to make a fresh, private URL for each scheme (server-backed ones use
#: the session's server, emptied for the test).
URLS: dict[str, Callable[[pytest.FixtureRequest, Path], str]] = {
    "memory": _memory_url, "sqlite": _sqlite_url, "redis": _redis_url,
    "redis+socket": _redis_socket_url, "rediss": _rediss_url, "amqp": _amqp_url,
    "amqps": _amqps_url}

def _django_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    from corekit.contrib.django.models import Counter, GroupResult, Revocation, TaskResult

    for model in (TaskResult, GroupResult, Counter, Revocation):
        model.objects.all().delete()
    return "django-db"


#: The django-db backend needs Django set up, which a process does once and for
#: good: its contract runs in a pytest of its own (tests/contrib/django/
#: test_django_backend.py sets COREKIT_CONTRACT_DJANGO to a database file).
DJANGO_DATABASE = os.environ.get("COREKIT_CONTRACT_DJANGO")
if DJANGO_DATABASE:
    from django_setup import set_django_up

    set_django_up(DJANGO_DATABASE)
    URLS["django-db"] = _django_db_url


#: Schemes that name the same plugin as another one here: run once, under
#: the other name.
ALIASES = {"pyamqp": "amqp"}

#: Schemes the contract suite cannot express, and why (their own tests say the rest).
NOT_IN_CONTRACT = {
    "django-db": ("django-db needs Django set up, for good, in the process: its contract "
                  "runs in a pytest of its own, from tests/contrib/django/test_django_backend.py"),
    "rpc": ("rpc:// stores nothing: each result travels as a message to the one client "
            "that sent the task, so one backend cannot read what another stored; "
            "see tests/plugins/amqp/test_rpc_backend.py")}

#: Options each scheme's transports get in the contract suites (RabbitMQ
#: queues have priorities only when declared with x-max-priority).
OPTIONS: dict[str, dict[str, Any]] = {"amqp": {"max_priority": 9},
                                      "amqps": {"max_priority": 9}}


def _schemes(kind: str) -> list[Any]:
    return [pytest.param(scheme, id=scheme, marks=pytest.mark.skipif(
                scheme not in URLS,
                reason=NOT_IN_CONTRACT.get(
                    scheme, f"no fixture starts a server for {scheme}:// in the contract "
                            f"suite yet")))
            for scheme in sorted(PM.registry(kind)) if scheme not in ALIASES]


@pytest.fixture
def codecs() -> Codecs:
    return Codecs(PM.registry("serializers").values(), PM.registry("compressors").values())


@pytest.fixture(params=_schemes("transports"))
def make_transport(request: pytest.FixtureRequest, tmp_path: Path
                   ) -> Iterator[Callable[..., Transport]]:
    """``make_transport(**options)``: a new transport (a new consumer) on
    the one broker this test owns."""
    url = URLS[request.param](request, tmp_path)
    made: list[Transport] = []

    def make(**options: Any) -> Transport:
        options = {**OPTIONS.get(request.param, {}), **options}
        transport: Transport = PM.get("transports", request.param)(url, options)
        transport.connect()
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()


@pytest.fixture
def transport(make_transport: Callable[..., Transport]) -> Transport:
    return make_transport()


@pytest.fixture(params=_schemes("result_backends"))
def make_backend(request: pytest.FixtureRequest, tmp_path: Path, codecs: Codecs
                 ) -> Iterator[Callable[..., ResultBackend]]:
    """``make_backend(**options)``: a new backend on the one store this test owns."""
    url = URLS[request.param](request, tmp_path)
    made: list[ResultBackend] = []

    def make(**options: Any) -> ResultBackend:
        backend: ResultBackend = PM.get("result_backends", request.param)(
            url, codecs, {"result_expires": 3600, **options})
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def backend(make_backend: Callable[..., ResultBackend]) -> ResultBackend:
    return make_backend()
