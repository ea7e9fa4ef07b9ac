"""The chord join (`corekit.workflow.on_chord_part`) on its own: parts
counted in the result backend, including a part that ran twice."""
from __future__ import annotations

from typing import Any

from corekit import Corekit, states
from corekit.result import AsyncResult, GroupResult
from corekit.workflow import on_chord_part


def _chord(app: Corekit, ids: list[str]) -> tuple[dict[str, Any], list[list[int]]]:
    calls: list[list[int]] = []

    @app.task(name="join.body")
    def body(values: list[int]) -> None:
        calls.append(values)

    app.conf.task_always_eager = True  # the body runs here when the join sends it
    app.backend.save_group("g", GroupResult("g", [AsyncResult(i, app=app) for i in ids], app=app))
    sig = body.s()
    sig.freeze()
    return {**sig, "chord_size": len(ids)}, calls


def _done(app: Corekit, task_id: str, value: int) -> None:
    app.backend.store_result(task_id, value, states.SUCCESS)


def test_the_part_that_completes_the_count_joins(memory_app: Corekit) -> None:
    body, calls = _chord(memory_app, ["a", "b", "c"])
    for i, task_id in enumerate(["c", "a", "b"]):
        _done(memory_app, task_id, i)
        on_chord_part(memory_app, memory_app.backend, "g", body)
        assert calls == ([] if i < 2 else [[1, 2, 0]])  # in the header's order


def test_a_part_counted_twice_does_not_join_early(memory_app: Corekit) -> None:
    body, calls = _chord(memory_app, ["a", "b"])
    _done(memory_app, "a", 1)
    on_chord_part(memory_app, memory_app.backend, "g", body)
    on_chord_part(memory_app, memory_app.backend, "g", body)  # "a" redelivered and run again
    assert calls == []  # "b" has not run: no join, no ChordError
    _done(memory_app, "b", 2)
    on_chord_part(memory_app, memory_app.backend, "g", body)
    assert calls == [[1, 2]]
    on_chord_part(memory_app, memory_app.backend, "g", body)  # a late duplicate: joined once
    assert calls == [[1, 2]]


def test_a_failed_part_fails_the_body_once(memory_app: Corekit) -> None:
    body, calls = _chord(memory_app, ["a", "b"])
    _done(memory_app, "a", 1)
    memory_app.backend.store_result("b", KeyError("gone"), states.FAILURE)
    for _ in range(3):
        on_chord_part(memory_app, memory_app.backend, "g", body)
    assert calls == []
    meta = memory_app.backend.get_task_meta(body["options"]["task_id"])
    assert meta["status"] == states.FAILURE
    assert meta["result"]["exc_type"] == "ChordError"
    assert meta["result"]["exc_message"] == ["Dependency b raised KeyError: gone"]
