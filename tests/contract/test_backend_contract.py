"""The result backend contract (corekit.backend.ResultBackend), on every backend."""
from __future__ import annotations

import threading
from typing import Any

import pytest

from corekit import states
from corekit.backend import decode_exception
from corekit.exceptions import TimeoutError


def test_unknown_id_is_pending(backend: Any) -> None:
    meta = backend.get_task_meta("nope")
    assert meta["status"] == states.PENDING and meta["result"] is None
    assert meta["task_id"] == "nope"


def test_success_round_trip(backend: Any) -> None:
    backend.store_result("t1", {"a": [1, 2.5, "x", None, True]}, states.SUCCESS)
    meta = backend.get_task_meta("t1")
    assert meta["status"] == states.SUCCESS
    assert meta["result"] == {"a": [1, 2.5, "x", None, True]}
    assert meta["date_done"] and meta["children"] == [] and meta["task_id"] == "t1"


def test_failure_keeps_the_exception_portable(backend: Any) -> None:
    backend.store_result("t2", ValueError("boom", 3), states.FAILURE, traceback="tb text")
    meta = backend.get_task_meta("t2")
    assert meta["result"] == {"exc_type": "ValueError", "exc_message": ["boom", 3],
                              "exc_module": "builtins"}
    assert meta["traceback"] == "tb text"
    exc = decode_exception(meta["result"])
    assert isinstance(exc, ValueError) and exc.args == ("boom", 3)


def test_store_many_and_overwrite(backend: Any) -> None:
    backend.store_many([backend.make_meta(f"m{i}", i, states.SUCCESS) for i in range(50)])
    backend.store_result("m3", None, states.STARTED)
    assert [backend.get_task_meta(f"m{i}")["result"] for i in (0, 49)] == [0, 49]
    assert backend.get_task_meta("m3")["status"] == states.STARTED


def test_forget(backend: Any) -> None:
    backend.store_result("f", 1, states.SUCCESS)
    backend.forget("f")
    assert backend.get_task_meta("f")["status"] == states.PENDING


def test_wait_for_wakes_on_store(backend: Any) -> None:
    timer = threading.Timer(0.1, backend.store_result, ("w", 42, states.SUCCESS))
    timer.start()
    assert backend.wait_for("w", timeout=10)["result"] == 42
    timer.join()


def test_wait_for_ignores_unready_states_and_times_out(backend: Any) -> None:
    backend.store_result("slow", None, states.STARTED)
    with pytest.raises(TimeoutError, match="slow"):
        backend.wait_for("slow", timeout=0.2)


def test_expired_results_go(backend: Any) -> None:
    if backend.scheme == "memory":
        pytest.skip("the memory backend lives as long as its process: no expiry")
    backend.expires = 0.05
    backend.store_result("old", 1, states.SUCCESS)
    threading.Event().wait(0.1)
    assert backend.get_task_meta("old")["status"] == states.PENDING  # expired: unseen
    assert backend.cleanup() == 1  # and then deleted
