"""``async def`` tasks: awaited on any pool, each with its own self.request,
even when many run at once on one event loop."""
from __future__ import annotations

import asyncio

from corekit import Corekit
from corekit.request import Request
from corekit.testing import start_worker
from corekit.trace import atrace


def test_an_async_task_runs_on_a_thread_pool_worker(sqlite_app: Corekit) -> None:
    @sqlite_app.task(bind=True)
    async def double(self, x: int) -> tuple[int, str]:  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.01)
        return x * 2, self.request.id

    with start_worker(sqlite_app, pool="threads", concurrency=2):
        result = double.delay(21)
        assert result.get(timeout=10) == [42, result.id]


def test_an_async_task_runs_eagerly(memory_app: Corekit) -> None:
    @memory_app.task
    async def hello(name: str) -> str:
        return f"hello {name}"

    assert hello.apply(("you",)).get() == "hello you"


def test_concurrent_coroutines_each_see_their_own_request(memory_app: Corekit) -> None:
    @memory_app.task(bind=True)
    async def whoami(self, pause: float) -> str:  # type: ignore[no-untyped-def]
        await asyncio.sleep(pause)  # the others run meanwhile
        return str(self.request.id)

    async def main() -> list[str]:
        calls = [atrace(whoami, Request(id=f"id-{i}", task=whoami.name), [0.01 * (5 - i)], {})
                 for i in range(5)]
        return [o.retval for o in await asyncio.gather(*calls)]

    assert asyncio.run(main()) == [f"id-{i}" for i in range(5)]
