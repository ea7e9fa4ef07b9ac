"""The ``asyncio`` pool: ``async def`` tasks run natively on one event loop,
up to ``concurrency`` at once; plain tasks run in a thread executor beside
it, so a blocking task never stalls the coroutines."""
from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from traceback import format_exc
from typing import Any, Awaitable, Callable

from corekit.exceptions import TimeLimitExceeded
from corekit.pool import Pool
from corekit.worker.job import Job, aexecute, execute

logger = logging.getLogger("corekit.pool")

#: Threads for plain (blocking) tasks: at most this many, at most `concurrency`.
MAX_EXECUTOR_THREADS = 32
#: stop(wait=False): how long to wait for cancelled coroutines to unwind.
CANCEL_GRACE = 5.0


class AsyncioPool(Pool):
    """One event loop in a thread named ``corekit-asyncio``.  Each job gets
    an asyncio task of its own (so its own ``self.request``, a context
    variable); a semaphore of ``concurrency`` slots bounds how many run.
    `apply` never blocks: the worker bounds submissions.  Jobs that are not
    `Job`\\ s (plain callables) run in the executor.

    `before_async_task` and `after_async_task` are lists of ``async def``
    callables of no argument that a bootstep may append to in its
    ``create``: they are awaited in order on the loop, in the job's own
    asyncio task, before and after each ``async def`` task (after it even
    when it fails, times out or is cancelled), outside its time limit.  One
    that raises is logged; the rest, and the task, run anyway.  Plain tasks
    have the task signals, sent in their own thread, instead."""

    name = "asyncio"
    #: a hard limit cancels an ``async def`` task; nothing can interrupt a
    #: coroutine with SoftTimeLimitExceeded, nor stop a thread
    supports = frozenset({"time_limit"})

    def __init__(self, concurrency: int, **options: Any) -> None:
        super().__init__(concurrency, **options)
        self._loop = asyncio.new_event_loop()
        self._slots = asyncio.Semaphore(concurrency)
        self._executor = self._new_executor()
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._by_job: dict[int, asyncio.Task[None]] = {}  # id(job) -> its task, on the loop
        self._terminated: dict[int, int] = {}  # id(job) -> signal, for cancelled jobs
        self._active = 0
        self._lock = threading.Lock()
        self._closed = False
        self.before_async_task: list[Callable[[], Awaitable[Any]]] = []
        self.after_async_task: list[Callable[[], Awaitable[Any]]] = []

    # -- the loop thread --------------------------------------------------------
    def start(self) -> None:
        """Start the loop thread (once; a second call does nothing)."""
        if self._closed:
            raise RuntimeError("the asyncio pool was stopped and cannot start again")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run_loop, name="corekit-asyncio",
                                            daemon=True)
            self._thread.start()

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    @property
    def loop_thread(self) -> threading.Thread | None:
        return self._thread

    # -- jobs ---------------------------------------------------------------------
    def apply(self, job: Callable[[], Any]) -> None:
        """Schedule *job* on the loop; never blocks.  Jobs applied before
        `start` wait for it."""
        if self._closed:
            raise RuntimeError("the asyncio pool is stopped: it takes no new jobs")
        self._loop.call_soon_threadsafe(self._spawn, job)

    def _spawn(self, job: Callable[[], Any]) -> None:
        task = self._loop.create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if isinstance(job, Job):
            self._by_job[id(job)] = task
            task.add_done_callback(lambda _: self._by_job.pop(id(job), None))

    def resize(self, concurrency: int) -> None:
        """Release slots, or take some away for good as running jobs free
        them (on the loop, so after the jobs already applied)."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        if self._closed:
            raise RuntimeError("the asyncio pool is stopped")
        change, self.concurrency = concurrency - self.concurrency, concurrency
        self._loop.call_soon_threadsafe(self._change_slots, change)

    def _new_executor(self) -> ThreadPoolExecutor:
        """Threads for plain tasks, as many as the pool's slots (at most
        MAX_EXECUTOR_THREADS)."""
        self.executor_threads = min(MAX_EXECUTOR_THREADS, self.concurrency)
        return ThreadPoolExecutor(self.executor_threads,
                                  thread_name_prefix="corekit-asyncio-sync")

    def _change_slots(self, change: int) -> None:
        if min(MAX_EXECUTOR_THREADS, self.concurrency) != self.executor_threads:
            # new plain tasks go to threads as many as the new size; the old
            # executor's running ones finish there
            old, self._executor = self._executor, self._new_executor()
            old.shutdown(wait=False)
        for _ in range(change):
            self._slots.release()
        if change < 0:  # a task of the pool's: stopping waits for it like for a job
            task = self._loop.create_task(self._retire_slots(-change))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _retire_slots(self, n: int) -> None:
        for _ in range(n):
            await self._slots.acquire()

    def enforces(self, task: Any, limit: str) -> bool:
        return limit == "time_limit" and inspect.iscoroutinefunction(task.run)

    def terminate(self, job: Any, signum: int) -> bool:
        """Cancel *job*'s coroutine (an ``async def`` task); a plain task
        running in the executor cannot be stopped."""
        if not inspect.iscoroutinefunction(job.task.run):
            return False

        def cancel() -> None:
            task = self._by_job.get(id(job))
            if task is not None and not task.done():
                self._terminated[id(job)] = signum
                task.cancel()

        self._loop.call_soon_threadsafe(cancel)
        return True

    async def _run(self, job: Callable[[], Any]) -> None:
        async with self._slots:
            if not isinstance(job, Job):
                try:
                    await self._in_thread(job)
                except Exception:  # a raising job must not cost the pool a slot
                    logger.exception("pool job %r raised", job)
                return
            try:
                metas = await self._execute(job)
            except asyncio.CancelledError:
                signum = self._terminated.pop(id(job), None)
                if signum is None:
                    raise  # the pool is stopping without waiting
                job.revoke("terminated", terminated=True, signum=signum)
                return
        try:
            job.finish(metas)
        except Exception:
            logger.exception("internal error finishing %r", job)

    async def _execute(self, job: Job) -> list[dict[str, Any]]:
        """The job's metas: awaited here when its task is ``async def``, else
        run in the executor.  Never raises an Exception (cancellation yes)."""
        try:
            call = job.call()
            if inspect.iscoroutinefunction(job.task.run):
                self._count(1)
                hard = self.time_limits(call, job.task)[0]
                try:
                    if self.before_async_task:
                        await _await_each(self.before_async_task)
                    return await asyncio.wait_for(aexecute(call, job.task, job.started), hard)
                except asyncio.TimeoutError:
                    logger.error("Hard time limit (%ss) exceeded for %r: cancelled", hard, job)
                    return job.failure_metas(TimeLimitExceeded(
                        f"hard time limit ({hard}s) exceeded"))
                finally:
                    try:
                        if self.after_async_task:
                            await _await_each(self.after_async_task)
                    finally:
                        self._count(-1)
            return await self._in_thread(execute, call, job.task, job.started)
        except Exception as exc:  # a corekit bug: stored as the task's FAILURE, not retried
            logger.exception("internal error running %r", job)
            return job.failure_metas(exc, format_exc())

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self._loop.run_in_executor(self._executor, self._counted, fn, *args)

    def _counted(self, fn: Callable[..., Any], *args: Any) -> Any:
        self._count(1)
        try:
            return fn(*args)
        finally:
            self._count(-1)

    def _count(self, delta: int) -> None:
        with self._lock:
            self._active += delta

    def active(self) -> int:
        """Jobs running now: coroutines under way plus executor threads busy."""
        return self._active

    # -- stopping -----------------------------------------------------------------
    def stop(self, wait: bool = True) -> None:
        """With *wait*, let every applied job finish, then stop the loop and
        join its thread.  Without, cancel the coroutines and return; plain
        tasks already in a thread run on (a later ``stop()`` waits for them)."""
        first_call = not self._closed
        self._closed = True
        if self._thread is None:
            if first_call:
                self._loop.close()
                self._executor.shutdown(wait=False, cancel_futures=True)
            return
        if first_call:
            done = asyncio.run_coroutine_threadsafe(self._shutdown(wait), self._loop)
            try:
                done.result(None if wait else CANCEL_GRACE)
            except FutureTimeout:
                logger.warning("asyncio pool: cancelled tasks still unwinding after %ss",
                               CANCEL_GRACE)
        if wait:
            self._thread.join()
            self._executor.shutdown(wait=True)

    async def _shutdown(self, wait: bool) -> None:
        """Runs after every `_spawn` already scheduled (callbacks run in order)."""
        tasks = list(self._tasks)
        if not wait:
            for task in tasks:
                task.cancel()
            if tasks:
                logger.warning("asyncio pool stopped without waiting: %d job(s) cancelled",
                               len(tasks))
        await asyncio.gather(*tasks, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=not wait)
        self._loop.stop()

    def info(self) -> dict[str, Any]:
        return {**super().info(), "running": self._active,
                "executor-threads": self.executor_threads}


async def _await_each(hooks: list[Callable[[], Awaitable[Any]]]) -> None:
    for hook in hooks:
        try:
            await hook()
        except Exception:
            logger.exception("asyncio pool: %r raised", hook)
