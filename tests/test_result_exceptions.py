"""Reading a stored exception never imports a module the meta names: only
modules already imported, or listed in ``result_exception_modules``, give
the exception its own type; anything else comes back as a `RemoteError`
that keeps the type's name, its module and the message."""
from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from corekit import Corekit, states
from corekit.exceptions import EncodeError, RemoteError, TaskRevokedError

PROBE = '''
import pathlib
pathlib.Path({marker!r}).write_text("imported")

class Boom(Exception):
    pass
'''


@pytest.fixture
def probe(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A throwaway module on sys.path that records being imported."""
    name = f"corekit_probe_{uuid.uuid4().hex}"
    marker = tmp_path / "imported.txt"
    (tmp_path / f"{name}.py").write_text(PROBE.format(marker=str(marker)))
    sys.path.insert(0, str(tmp_path))
    yield name, marker
    sys.path.remove(str(tmp_path))
    sys.modules.pop(name, None)


def _store_failure(app: Corekit, task_id: str, module: str, exc_type: str = "Boom") -> None:
    app.backend.store_many([app.backend.make_meta(
        task_id, {"exc_type": exc_type, "exc_message": ["bad", 7], "exc_module": module},
        states.FAILURE, "tb")])


def test_a_meta_naming_a_module_does_not_import_it(sqlite_app: Corekit,
                                                   probe: tuple[str, Path]) -> None:
    name, marker = probe
    _store_failure(sqlite_app, "t1", name)
    result = sqlite_app.AsyncResult("t1")
    with pytest.raises(RemoteError) as info:
        result.get(timeout=1)
    assert (info.value.exc_type, info.value.exc_module) == ("Boom", name)
    assert str(info.value) == f"{name}.Boom: bad, 7"
    assert isinstance(result.result, RemoteError)
    assert not marker.exists() and name not in sys.modules


def test_an_allowed_module_is_imported(tmp_path: Path, probe: tuple[str, Path]) -> None:
    name, marker = probe
    url = f"sqlite://{tmp_path / 'r.sqlite3'}"
    app = Corekit("tests", broker=url, backend=url, result_exception_modules=[name])
    try:
        _store_failure(app, "t2", name)
        with pytest.raises(Exception) as info:
            app.AsyncResult("t2").get(timeout=1)
        assert type(info.value).__name__ == "Boom" and type(info.value).__module__ == name
        assert info.value.args == ("bad", 7) and marker.exists()
    finally:
        app.close()


def test_an_already_imported_module_gives_the_real_type(sqlite_app: Corekit,
                                                       probe: tuple[str, Path]) -> None:
    name, _ = probe
    module = __import__(name)  # the app imported it itself
    _store_failure(sqlite_app, "t3", name)
    assert type(sqlite_app.AsyncResult("t3").get(timeout=1, propagate=False)) is module.Boom
    _store_failure(sqlite_app, "t4", "builtins", "KeyError")
    assert type(sqlite_app.AsyncResult("t4").get(timeout=1, propagate=False)) is KeyError


def test_a_non_exception_in_an_imported_module_is_not_called(sqlite_app: Corekit) -> None:
    _store_failure(sqlite_app, "t5", "os", "system")
    exc = sqlite_app.AsyncResult("t5").get(timeout=1, propagate=False)
    assert type(exc) is RemoteError and exc.exc_type == "system"


@pytest.mark.parametrize("module, exc_type, expected", [
    ("celery.exceptions", "TaskRevokedError", TaskRevokedError),
    ("kombu.exceptions", "EncodeError", EncodeError),
    ("corekit.exceptions", "TaskRevokedError", TaskRevokedError)])
def test_celery_and_kombu_exceptions_read_as_corekits(sqlite_app: Corekit, module: str,
                                                      exc_type: str, expected: type) -> None:
    _store_failure(sqlite_app, "t6", module, exc_type)
    exc = sqlite_app.AsyncResult("t6").get(timeout=1, propagate=False)
    assert type(exc) is expected and exc.args == ("bad", 7)


def test_a_celery_exception_corekit_lacks_keeps_its_celery_type(sqlite_app: Corekit) -> None:
    """celery.exceptions is always allowed: its types corekit has no twin
    of are rebuilt from Celery's module when celery is installed."""
    pytest.importorskip("celery")
    _store_failure(sqlite_app, "t7", "celery.exceptions", "QueueNotFound")
    exc = sqlite_app.AsyncResult("t7").get(timeout=1, propagate=False)
    assert (type(exc).__module__, type(exc).__name__) == ("celery.exceptions", "QueueNotFound")
