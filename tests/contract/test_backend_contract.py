"""The result backend contract (`corekit.result_backend.ResultBackend`), on every backend."""
from __future__ import annotations

import builtins
import threading
import time
from typing import Callable

import pytest

from corekit import states
from corekit.result_backend import ResultBackend, decode_exception
from corekit.exceptions import TimeoutError
from corekit.serialization import Codecs

MakeBackend = Callable[..., ResultBackend]


def test_unknown_id_is_pending(backend: ResultBackend) -> None:
    meta = backend.get_task_meta("nope")
    assert meta == {"task_id": "nope", "status": states.PENDING, "result": None,
                    "traceback": None, "children": [], "date_done": None}


def test_success_round_trip(backend: ResultBackend) -> None:
    backend.store_result("t1", {"a": [1, 2.5, "x", None, True]}, states.SUCCESS)
    meta = backend.get_task_meta("t1")
    assert meta["status"] == states.SUCCESS
    assert meta["result"] == {"a": [1, 2.5, "x", None, True]}
    assert meta["date_done"] and meta["children"] == [] and meta["task_id"] == "t1"


def test_failure_keeps_the_exception_portable(backend: ResultBackend) -> None:
    backend.store_result("t2", ValueError("boom"), states.FAILURE, traceback="tb")
    meta = backend.get_task_meta("t2")
    assert meta["status"] == states.FAILURE and meta["traceback"] == "tb"
    assert meta["result"] == {"exc_type": "ValueError", "exc_message": ["boom"],
                              "exc_module": "builtins"}
    exc = decode_exception(meta["result"])
    assert type(exc) is ValueError and exc.args == ("boom",)


def test_store_many_and_overwrite(backend: ResultBackend) -> None:
    backend.store_many([backend.make_meta(f"m{i}", i, states.SUCCESS) for i in range(50)])
    backend.store_result("m3", None, states.STARTED)
    assert [backend.get_task_meta(f"m{i}")["result"] for i in (0, 25, 49)] == [0, 25, 49]
    assert backend.get_task_meta("m3")["status"] == states.STARTED
    backend.store_many([])


def test_forget(backend: ResultBackend) -> None:
    backend.store_result("f", 1, states.SUCCESS)
    backend.forget("f")
    backend.forget("never-stored")
    assert backend.get_task_meta("f")["status"] == states.PENDING


def test_backends_on_one_url_share_results(make_backend: MakeBackend) -> None:
    writer, reader = make_backend(), make_backend()
    writer.store_result("shared", [1, 2], states.SUCCESS)
    assert reader.get_task_meta("shared")["result"] == [1, 2]


def test_wait_for_wakes_when_another_thread_stores(make_backend: MakeBackend) -> None:
    waiter, writer = make_backend(), make_backend()
    timer = threading.Timer(0.1, writer.store_result, ("w", 42, states.SUCCESS))
    timer.start()
    try:
        assert waiter.wait_for("w", timeout=10)["result"] == 42
    finally:
        timer.join()


def test_wait_for_returns_at_once_when_ready(backend: ResultBackend) -> None:
    backend.store_result("done", "x", states.FAILURE)
    assert backend.wait_for("done", timeout=0.01)["status"] == states.FAILURE


def test_wait_for_ignores_unready_states_and_times_out(backend: ResultBackend) -> None:
    backend.store_result("slow", None, states.STARTED)
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="slow") as info:
        backend.wait_for("slow", timeout=0.2)
    assert 0.15 <= time.monotonic() - start < 2.0
    assert isinstance(info.value, builtins.TimeoutError)  # catchable as the builtin too


def test_expired_results_go(make_backend: MakeBackend) -> None:
    backend = make_backend(result_expires=0.05)
    if backend.scheme == "memory":
        pytest.skip("memory:// keeps results for the life of the process")
    backend.store_result("old", 1, states.SUCCESS)
    time.sleep(0.1)  # nothing to wait on: expiry is the passing of time
    assert backend.get_task_meta("old")["status"] == states.PENDING  # expired: unseen
    if type(backend).cleanup is not ResultBackend.cleanup:  # a store that needs sweeping
        assert backend.cleanup() == 1  # and then deleted
        assert backend.cleanup() == 0


@pytest.mark.parametrize("expires", [None, 0])
def test_no_expiry_keeps_results(make_backend: MakeBackend, expires: object) -> None:
    backend = make_backend(result_expires=expires)
    backend.store_result("kept", 1, states.SUCCESS)
    assert backend.cleanup() == 0
    assert backend.get_task_meta("kept")["result"] == 1


# -- counters ------------------------------------------------------------------
def test_incr_counts_up_from_zero(backend: ResultBackend) -> None:
    assert backend.get_counter("c") == 0
    assert [backend.incr("c") for _ in range(3)] == [1, 2, 3]
    assert backend.incr("c", 5) == 8 and backend.get_counter("c") == 8
    assert backend.incr("other") == 1 and backend.get_counter("c") == 8


def test_concurrent_incr_gives_each_caller_a_distinct_value(make_backend: MakeBackend) -> None:
    shared = [make_backend(), make_backend()]  # each shared by four threads
    start = threading.Barrier(8)
    seen: list[list[int]] = [[] for _ in range(8)]

    def count(i: int) -> None:
        start.wait(10)
        seen[i].extend(shared[i % 2].incr("joined") for _ in range(100))

    threads = [threading.Thread(target=count, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    values = sorted(v for s in seen for v in s)
    assert values == list(range(1, 801))
    assert shared[0].get_counter("joined") == 800


def test_delete_counter(backend: ResultBackend) -> None:
    backend.incr("d", 2)
    backend.delete_counter("d")
    backend.delete_counter("never-counted")
    assert backend.get_counter("d") == 0 and backend.incr("d") == 1


def test_counters_expire_and_start_again(make_backend: MakeBackend) -> None:
    backend = make_backend(result_expires=0.05)
    if backend.scheme == "memory":
        pytest.skip("memory:// keeps counters for the life of the process")
    backend.incr("old", 3)
    time.sleep(0.1)  # nothing to wait on: expiry is the passing of time
    assert backend.get_counter("old") == 0
    if type(backend).cleanup is not ResultBackend.cleanup:
        assert backend.cleanup() == 1 and backend.cleanup() == 0
    assert backend.incr("old") == 1


def test_each_incr_restarts_the_expiry(make_backend: MakeBackend) -> None:
    backend = make_backend(result_expires=1.0)
    if backend.scheme == "memory":
        pytest.skip("memory:// keeps counters for the life of the process")
    backend.incr("kept")
    time.sleep(0.6)
    backend.incr("kept")
    time.sleep(0.6)  # 1.2s after the first incr, 0.6s after the last
    assert backend.get_counter("kept") == 2


@pytest.mark.parametrize("expires", [None, 0])
def test_no_expiry_keeps_counters(make_backend: MakeBackend, expires: object) -> None:
    backend = make_backend(result_expires=expires)
    backend.incr("kept")
    assert backend.cleanup() == 0 and backend.get_counter("kept") == 1


def test_a_backend_without_counters_names_its_scheme(codecs: Codecs) -> None:
    class Bare(ResultBackend):
        scheme = "couch"

    bare = Bare("couch://h/db", codecs)
    for call in (lambda: bare.incr("k"), lambda: bare.get_counter("k"),
                 lambda: bare.delete_counter("k")):
        with pytest.raises(NotImplementedError, match="couch://"):
            call()


def test_revocations_are_kept_for_later_workers(make_backend: Callable[..., ResultBackend]
                                                ) -> None:
    backend = make_backend()
    try:
        backend.revocations(0.0)
    except NotImplementedError as exc:
        pytest.skip(str(exc))
    now = time.time()
    backend.add_revocations([{"task_id": "a", "terminate": False, "signal": None, "at": now},
                             {"headers": {"stamp": "x"}, "terminate": True,
                              "signal": "SIGKILL", "at": now + 0.001}])
    later = make_backend()  # another client, as a worker starting later
    got = later.revocations(now - 60)
    assert [e.get("task_id") for e in got] == ["a", None]
    assert got[1]["headers"] == {"stamp": "x"} and got[1]["signal"] == "SIGKILL"
    assert later.revocations(now + 0.0005) == got[1:]
    backend.add_revocations([{"task_id": "old", "at": now - 10_000_000}])  # long expired
    assert "old" not in [e.get("task_id") for e in later.revocations(0.0)]


# -- many at once, and groups -----------------------------------------------------
def test_get_many_keeps_the_order_and_knows_pending(backend: ResultBackend) -> None:
    backend.store_many([backend.make_meta(f"g{i}", i * 10, states.SUCCESS) for i in range(3)])
    metas = backend.get_many(["g2", "unknown", "g0", "g1"])
    assert [m["task_id"] for m in metas] == ["g2", "unknown", "g0", "g1"]
    assert [m["status"] for m in metas] == [states.SUCCESS, states.PENDING] + [states.SUCCESS] * 2
    assert [m["result"] for m in metas] == [20, None, 0, 10]
    assert backend.get_many([]) == []


def test_get_many_reads_more_than_one_batch(backend: ResultBackend) -> None:
    ids = [f"b{i}" for i in range(1200)]  # more than SQLite binds in one statement
    backend.store_many([backend.make_meta(i, i, states.SUCCESS) for i in ids])
    assert [m["result"] for m in backend.get_many(ids)] == ids


def test_a_saved_group_is_restored_by_another_client(make_backend: MakeBackend) -> None:
    from corekit import Corekit
    from corekit.result import AsyncResult, GroupResult

    app = Corekit("contract", broker="memory://contract-groups")
    group = GroupResult("grp-1", [AsyncResult("a", app=app),
                                  GroupResult("inner", [AsyncResult("b", app=app)], app=app)],
                        app=app)
    writer, reader = make_backend(), make_backend()
    writer.save_group("grp-1", group)
    writer.store_result("grp-1", "a task's own result", states.SUCCESS)  # apart from groups
    restored = reader.restore_group("grp-1", app=app)
    assert isinstance(restored, GroupResult) and restored.id == "grp-1"
    assert [r.id for r in restored.results] == ["a", "inner"]
    assert isinstance(restored.results[1], GroupResult)
    assert [r.id for r in restored.results[1].results] == ["b"]
    assert reader.get_task_meta("grp-1")["result"] == "a task's own result"
    assert reader.restore_group("never-saved") is None
    writer.delete_group("grp-1")
    assert reader.restore_group("grp-1") is None


class _Unencodable:
    pass


def test_an_unencodable_meta_fails_its_task_alone(backend: ResultBackend) -> None:
    """Each meta is encoded on its own: the one that cannot be is stored as
    FAILURE with Celery's EncodeError; its batch is stored; nothing raises."""
    metas = [backend.make_meta(f"e{i}", _Unencodable() if i == 1 else i, states.SUCCESS)
             for i in range(3)]
    backend.store_many(metas)
    good = [backend.get_task_meta(f"e{i}") for i in (0, 2)]
    assert [(m["status"], m["result"]) for m in good] == [(states.SUCCESS, 0),
                                                          (states.SUCCESS, 2)]
    bad = backend.get_task_meta("e1")
    assert bad["status"] == states.FAILURE and bad["task_id"] == "e1" and bad["date_done"]
    assert bad["result"]["exc_type"] == "EncodeError"
    assert bad["result"]["exc_module"] == "kombu.exceptions"
    assert "_Unencodable" in bad["result"]["exc_message"][0]


def test_a_result_over_result_max_size_fails_its_task(make_backend: MakeBackend) -> None:
    backend = make_backend(result_max_size=10_000)
    backend.store_many([backend.make_meta("big", "x" * 20_000, states.SUCCESS),
                        backend.make_meta("small", "x" * 100, states.SUCCESS)])
    assert backend.get_task_meta("small")["result"] == "x" * 100
    bad = backend.get_task_meta("big")
    assert bad["status"] == states.FAILURE
    assert "over result_max_size (10000 bytes)" in bad["result"]["exc_message"][0]
