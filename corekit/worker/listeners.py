"""Worker parts that follow the consumer's jobs (`JobListener`), and the
one that always does (`JobTracker`): how many tasks of each type ran, and
the jobs held but not started."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corekit.messages import Message
    from corekit.worker.job import Job


class JobListener:
    """Follows the jobs of a worker: a worker part (task events, say)
    subclasses it, overrides what it needs and adds itself to
    `Consumer.listeners` (a new list) when it starts.  ``received``,
    ``started`` and ``rejected`` are called on the
    consumer's thread; ``finished`` on whichever thread the pool finishes
    jobs on.  A listener must be quick and must not raise."""

    def received(self, job: Job) -> None:
        """A message became a job (it may wait for its ETA or its rate limit)."""

    def started(self, job: Job) -> None:
        """The pool got *job* (``job.started_at`` is set)."""

    def finished(self, job: Job) -> None:
        """*job* ended: ``job.metas[-1]`` says how (SUCCESS, FAILURE, RETRY,
        REVOKED, with its result or exception); empty when the task raised
        Ignore or was replaced.  Reported with ``ignore_result`` too."""

    def rejected(self, message: Message, reason: str) -> None:
        """*message* could not become a job and went to the dead-letter queue."""

    def requeued(self, job: Job) -> None:
        """*job* went back to the broker without an end here: it came before
        its ETA, the worker is shutting down, or its process was lost
        (``reject_on_worker_lost``)."""


class JobTracker(JobListener):
    """Follows the consumer's jobs for remote inspection (``stats``'
    ``total``, ``reserved``) and the heartbeats' ``processed`` (jobs handed
    to the pool, as Celery counts them).  ``received`` and ``started`` run on the consumer's
    thread, so only that thread writes `total`; the others only pop from
    `held`, which is atomic.  Readers copy both (`dict` copies atomically)."""

    def __init__(self) -> None:
        #: task name -> how many this worker started (``stats``)
        self.total: dict[str, int] = {}
        #: all of them (the heartbeats' ``processed``)
        self.processed = 0
        #: id(job) -> job, for jobs received and not yet started nor ended
        self.held: dict[int, Job] = {}

    def received(self, job: Job) -> None:
        self.held[id(job)] = job

    def started(self, job: Job) -> None:
        self.held.pop(id(job), None)
        name = job.headers.task
        self.total[name] = self.total.get(name, 0) + 1
        self.processed += 1

    def finished(self, job: Job) -> None:  # revoked or expired before it started
        self.held.pop(id(job), None)

    def requeued(self, job: Job) -> None:
        self.held.pop(id(job), None)

    def reserved(self) -> list[Job]:
        """Jobs received and not started, oldest first."""
        return list(self.held.values())
