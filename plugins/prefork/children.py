"""The prefork pool's child processes, as the worker sees them: forking,
the pipe to each, reading answers, reaping the dead, killing a child past
its hard time limit or running a revoked task.

What runs inside a child is `corekit.plugins.prefork.child`; the pool API,
scaling and dispatch are `corekit.plugins.prefork.pool`.  Only the pool's
supervisor thread changes the table, so it needs no lock; other threads
only read a snapshot (iterating gives a copy).
"""
from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkContext
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any, Iterator

from corekit.exceptions import TimeLimitExceeded, WorkerLostError
from corekit.plugins.prefork.child import child_main

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.worker.job import Job

logger = logging.getLogger("corekit.pool")

#: stop without waiting: how long children get to exit on SIGTERM before SIGKILL
TERMINATE_GRACE = 2.0


@dataclass(eq=False)
class Child:
    """The worker's view of one child process."""

    process: BaseProcess
    conn: Connection
    pid: int
    job: Job | None = None
    hard_limit: float | None = None
    #: monotonic time past which the running job is killed
    deadline: float | None = None
    idle_since: float = field(default_factory=time.monotonic)
    #: leaving soon (recycled, killed, told to stop): takes no more jobs
    retiring: bool = False
    #: its pipe is closed: stop reading it; the sentinel says when it is gone
    eof: bool = False
    #: 1, 2...: the lowest free when it was forked (``%i`` in log file names)
    index: int = 0

    @property
    def serving(self) -> bool:
        return not (self.retiring or self.eof)

    @property
    def idle(self) -> bool:
        return self.job is None and self.serving


class Children:
    """The live children by pid.  Iterating gives a snapshot list, so a
    caller may reap or retire while it iterates, and another thread may
    look (`PreforkPool.active`, `pid_of`)."""

    def __init__(self, context: ForkContext, app: Corekit, max_tasks: int | None,
                 max_memory: int | None, wake_fds: tuple[int, int]) -> None:
        """*wake_fds* is the pool's wake pipe, which a child closes."""
        self._context = context
        self._app = app
        self._max_tasks, self._max_memory = max_tasks, max_memory
        self._wake_fds = wake_fds
        self._by_pid: dict[int, Child] = {}

    def __iter__(self) -> Iterator[Child]:
        return iter(list(self._by_pid.values()))

    def __len__(self) -> int:
        return len(self._by_pid)

    def idle(self) -> Child | None:
        """A child free to take a job, if one is (supervisor thread)."""
        return next((c for c in self._by_pid.values() if c.idle), None)

    def running(self, job: Any) -> Child | None:
        """The child running *job*, if one is."""
        return next((c for c in list(self._by_pid.values()) if c.job is job), None)

    def spawn(self) -> Child:
        """Fork a child; it is ready as soon as it exists.  It closes the
        worker's ends of its siblings' pipes (*inherited*)."""
        parent_end, child_end = self._context.Pipe(duplex=True)
        inherited = [parent_end, *(c.conn for c in self._by_pid.values() if not c.eof)]
        taken = {c.index for c in self._by_pid.values()}
        index = next(i for i in range(1, len(taken) + 2) if i not in taken)
        process = self._context.Process(
            target=child_main, name="corekit-prefork-child", daemon=True,
            args=(child_end, inherited, self._wake_fds, self._app,
                  self._max_tasks, self._max_memory, index))
        process.start()
        child_end.close()
        child = Child(process, parent_end, process.pid or 0, index=index)
        self._by_pid[child.pid] = child
        return child

    def send(self, child: Child, job: Job, data: bytes, hard_limit: float | None) -> bool:
        """Give *child* the pickled call of *job*; False if the child died
        since its last answer (the sentinel will tell; the job is not its)."""
        # the child owns the job before it can answer: `active()` never misses it
        child.job, child.hard_limit = job, hard_limit
        child.deadline = time.monotonic() + hard_limit if hard_limit else None
        try:
            child.conn.send_bytes(data)
        except OSError:
            child.job, child.deadline = None, None
            child.eof = True
            return False
        return True

    def retire(self, child: Child) -> None:
        """Tell *child* to exit once its task (if any) is done."""
        child.retiring = True
        try:
            child.conn.send(None)
        except OSError:
            child.eof = True

    # -- answers and deaths ----------------------------------------------------------
    def wait_and_read(self, wake_fd: int, timeout: float | None, closing: bool) -> None:
        """Wait up to *timeout* for an answer, a death or a byte on
        *wake_fd* (drained here); read the answers, then reap the dead
        (*closing*: a child exiting while idle is no surprise)."""
        children = list(self._by_pid.values())
        waitables: list[Any] = [wake_fd]
        waitables += [c.conn for c in children if not c.eof]
        waitables += [c.process.sentinel for c in children]
        ready = set(wait(waitables, timeout))
        if wake_fd in ready:
            os.read(wake_fd, 65536)
        for c in children:
            if c.conn in ready:
                self._read(c)
        for c in children:
            if c.process.sentinel in ready:
                self._reap(c, closing)

    def _read(self, child: Child) -> None:
        try:
            while not child.eof and child.conn.poll():
                self._answer(child, child.conn.recv())
        except (EOFError, OSError):
            child.eof = True

    def _answer(self, child: Child, message: tuple[Any, ...]) -> None:
        job = child.job
        if job is None:  # an answer from a child already given up on (time limit)
            return
        if message[0] == "started":
            job.started(message[1])
            return
        _, metas, exiting = message
        child.job, child.deadline, child.idle_since = None, None, time.monotonic()
        if exiting:
            child.retiring = True
            logger.info("Child process %d is recycled: %s", child.pid, exiting)
        job.finish(metas)

    def _reap(self, child: Child, closing: bool) -> None:
        """*child* exited: read what it sent last, then fail or requeue the
        job it was running."""
        self._read(child)
        child.process.join()
        code = child.process.exitcode
        del self._by_pid[child.pid]
        child.conn.close()
        child.process.close()
        if child.job is not None:
            _lost(child.job, child.pid, describe_exit(code))
        elif not child.retiring and not closing:
            logger.error("Child process %d exited unexpectedly while idle (%s): replaced",
                         child.pid, describe_exit(code))

    # -- killing -----------------------------------------------------------------------
    def enforce_time_limits(self) -> None:
        """Kill each child whose task is past its hard time limit; the task
        fails with `TimeLimitExceeded`."""
        now = time.monotonic()
        for child in list(self._by_pid.values()):
            job = child.job
            if job is None or child.deadline is None or now < child.deadline:
                continue
            self._kill(child, signal.SIGKILL)
            logger.error("Hard time limit (%ss) exceeded for %r: child process %d killed",
                         child.hard_limit, job, child.pid)
            job.fail(TimeLimitExceeded(f"hard time limit ({child.hard_limit}s) exceeded"))

    def terminate(self, job: Job, signum: int) -> None:
        """Send *signum* to the child running *job* (revoked with
        ``terminate=True``) and store it REVOKED; nothing if it finished."""
        child = self.running(job)
        if child is None:
            return
        self._kill(child, signum)
        logger.warning("Terminated %r (signal %d): child process %d replaced", job, signum,
                       child.pid)
        job.revoke("terminated", terminated=True, signum=signum)

    def _kill(self, child: Child, signum: int) -> None:
        """*child*'s job is no longer its; it takes no other."""
        child.job, child.deadline, child.retiring = None, None, True
        try:
            os.kill(child.pid, signum)
        except ProcessLookupError:
            pass

    def shut_down(self, abandon: bool, queued: int) -> None:
        """Let every child exit after its task, or (*abandon*) terminate
        them (SIGKILL after `TERMINATE_GRACE`); *queued* jobs will not run."""
        children = list(self._by_pid.values())
        if abandon:
            running = sum(c.job is not None for c in children)
            if running or queued:
                logger.warning("prefork pool stopped without waiting: %d running task(s) "
                               "terminated, %d queued not started", running, queued)
            for c in children:
                c.process.terminate()
        else:
            for c in children:
                self.retire(c)
        deadline = time.monotonic() + TERMINATE_GRACE
        for c in children:
            c.process.join(None if not abandon else max(0.0, deadline - time.monotonic()))
            if c.process.exitcode is None:
                c.process.kill()
                c.process.join()
            c.conn.close()
        self._by_pid.clear()


def _lost(job: Job, pid: int, how: str) -> None:
    """The child running *job* died: requeue it (``reject_on_worker_lost``
    with late acks) or fail it with `WorkerLostError`."""
    if job.acks_late and job.task.option("reject_on_worker_lost",
                                         "task_reject_on_worker_lost"):
        logger.error("Child process %d died running %r (%s): message requeued", pid, job, how)
        job.requeue()
    else:
        logger.error("Child process %d died running %r (%s)", pid, job, how)
        job.fail(WorkerLostError(f"Worker exited prematurely: {how}."))


def describe_exit(code: int | None) -> str:
    """``signal 9 (SIGKILL)`` or ``exitcode 3``, as Celery words it."""
    if code is not None and code < 0:
        try:
            return f"signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"signal {-code}"
    return f"exitcode {code}"
