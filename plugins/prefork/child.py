"""What runs inside a prefork child: task calls read from the worker's pipe.

The child answers ``("started", metas)`` and ``("done", metas, exiting)``,
where *exiting* is why it leaves after this task (max tasks, memory) or
None.  Every send is pickled first, then written with SIGALRM blocked, so
neither an unpicklable result nor a soft time limit firing mid-write can
leave half a message in the pipe.
"""
from __future__ import annotations

import logging
import os
import resource
import signal
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import TYPE_CHECKING, Any, Iterable

from corekit import signals, states
from corekit.result_backend import ResultBackend
from corekit.exceptions import NotRegistered, SoftTimeLimitExceeded
from corekit.logfiles import set_process_index
from corekit.worker.job import TaskCall, execute

if TYPE_CHECKING:
    from corekit.app import Corekit

logger = logging.getLogger("corekit.pool")

#: the soft limit armed for the running task (None: no task is running)
_soft_limit: float | None = None


def child_main(conn: Connection, inherited: Iterable[Connection], inherited_fds: Iterable[int],
               app: Corekit, max_tasks: int | None, max_memory: int | None,
               index: int = 0) -> None:
    """Serve task calls until told to stop (None), the worker goes away, or
    a recycling limit is reached.  *index* is the child's pool process
    index (``%i`` in a log file's name: such a file is the child's own)."""
    for other in inherited:  # the worker's ends of the pipes: a sibling's death must show
        other.close()
    for fd in inherited_fds:
        os.close(fd)
    # Ctrl-C reaches the whole process group: the worker decides what happens
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # the worker's SIGHUP (restart in place) is the worker's; SIGUSR1 (stacks) works here too
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    set_process_index(index)
    signal.signal(signal.SIGALRM, _soft_limit_reached)
    app.after_fork()
    signals.worker_process_init.send(None)  # user code may set up per-process state
    served = 0
    while True:
        try:
            call = conn.recv()
        except (EOFError, OSError):  # the worker is gone
            return
        if call is None:
            return
        metas = run_call(call, app, conn)
        served += 1
        exiting = exit_reason(served, max_tasks, max_memory)
        if not send(conn, ("done", metas, exiting), call) or exiting:
            return


def run_call(call: TaskCall, app: Corekit, conn: Connection) -> list[dict[str, Any]]:
    """`execute` *call*, with its soft time limit armed while it runs."""
    def started(metas: list[dict[str, Any]]) -> None:
        send(conn, ("started", metas), call)

    try:
        task = app.find_task(call.task, call.request.get("headers"))
        if task is None:  # a task registered in the worker after the fork
            raise NotRegistered(call.task)
        _arm(call.soft_time_limit)
        try:
            return execute(call, task, started)
        finally:
            _disarm()
    except SoftTimeLimitExceeded as exc:  # fired just as the task returned
        return failure(call, exc)
    except Exception as exc:  # a corekit bug, or a task registered after the fork
        logger.exception("internal error running %s[%s]", call.task, call.id)
        return failure(call, exc)


def send(conn: Connection, message: tuple[Any, ...], call: TaskCall) -> bool:
    """Send *message*; False when the worker is gone.  A result that cannot
    be pickled becomes the task's failure instead."""
    try:
        data = ForkingPickler.dumps(message)
    except Exception as exc:
        logger.error("Task %s[%s]: its result cannot be sent to the worker: %r",
                     call.task, call.id, exc)
        data = ForkingPickler.dumps((message[0], failure(call, exc), *message[2:]))
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    try:
        conn.send_bytes(data)
    except OSError:
        return False
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return True


def failure(call: TaskCall, exc: BaseException) -> list[dict[str, Any]]:
    meta = ResultBackend.make_meta(call.id, exc, states.FAILURE)
    if call.keep_reply_to:
        meta["reply_to"] = call.reply_to
    if call.extended:
        meta.update(call.extended)
    return [meta]


def exit_reason(served: int, max_tasks: int | None, max_memory: int | None) -> str | None:
    if max_tasks and served >= max_tasks:
        return f"max_tasks_per_child ({max_tasks}) reached"
    if max_memory:
        rss = rss_kib()
        if rss > max_memory:
            return f"resident memory {rss} KiB is over max_memory_per_child ({max_memory} KiB)"
    return None


def rss_kib() -> int:
    """Current resident set size; the peak where /proc is missing."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _arm(seconds: float | None) -> None:
    global _soft_limit
    if seconds:
        _soft_limit = seconds
        signal.setitimer(signal.ITIMER_REAL, seconds)


def _disarm() -> None:
    global _soft_limit
    if _soft_limit is not None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _soft_limit = None


def _soft_limit_reached(signum: int, frame: Any) -> None:
    """SIGALRM: raise in whatever the task is doing, so it can clean up."""
    if _soft_limit is not None:
        raise SoftTimeLimitExceeded(f"soft time limit ({_soft_limit}s) exceeded")
