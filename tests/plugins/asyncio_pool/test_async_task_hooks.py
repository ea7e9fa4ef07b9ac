"""The asyncio pool's ``before_async_task`` / ``after_async_task``: what a
bootstep registers is awaited around each ``async def`` task, in the task's
own asyncio task, however the task ends (Django's database step closes old
connections there)."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from corekit import Corekit, TimeLimitExceeded
from corekit.testing import start_worker
from corekit.worker.steps import PoolStep

WAIT = 30.0


def test_registered_awaitables_run_around_each_async_task(
        memory_app: Corekit, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[str, Any]] = []

    def mark(what: str) -> None:
        seen.append((what, asyncio.current_task()))

    @memory_app.task(name="proj.work")
    async def work(fail: bool) -> str:
        mark("task")
        if fail:
            raise ValueError("no")
        return "done"

    @memory_app.task(name="proj.dawdle", time_limit=0.3)
    async def dawdle() -> None:
        mark("task")
        await asyncio.sleep(60)

    @memory_app.task(name="proj.plain")
    def plain() -> str:
        return "plain"

    async def before() -> None:
        mark("before")

    async def after() -> None:
        mark("after")

    async def broken() -> None:
        raise RuntimeError("a broken hook")

    with start_worker(memory_app, pool="asyncio", concurrency=2) as worker:
        pool = worker.blueprint[PoolStep].pool
        pool.before_async_task.extend([broken, before])
        pool.after_async_task.append(after)
        with caplog.at_level(logging.ERROR, "corekit.pool"):
            assert work.delay(False).get(timeout=WAIT) == "done"
        with pytest.raises(ValueError):
            assert work.delay(True).get(timeout=WAIT) is None
        with pytest.raises(TimeLimitExceeded):
            assert dawdle.delay().get(timeout=WAIT) is None
        assert plain.delay().get(timeout=WAIT) == "plain"  # a plain task: none of them
    # before, the task, after: for each async task, however it ended
    assert [what for what, _ in seen] == ["before", "task", "after"] * 3
    for i in range(0, 9, 3):  # all three in the job's own asyncio task (its context)
        assert seen[i][1] is seen[i + 2][1] is not None
    assert seen[0][1] is not seen[3][1]
    assert "a broken hook" in caplog.text  # logged; the task ran anyway
