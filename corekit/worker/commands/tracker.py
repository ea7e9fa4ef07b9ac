"""What remote inspection needs to know about jobs that the consumer does
not keep: how many tasks of each type ran, and the jobs held but not
started (``reserved``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from corekit.worker.consumer import JobListener

if TYPE_CHECKING:
    from corekit.worker.job import Job


class JobTracker(JobListener):
    """Follows the consumer's jobs for ``stats`` (``total``) and
    ``reserved``.  ``received`` and ``started`` run on the consumer's
    thread, so only that thread writes `total`; the others only pop from
    `held`, which is atomic.  Readers copy both (`dict` copies atomically)."""

    def __init__(self) -> None:
        #: task name -> how many this worker started
        self.total: dict[str, int] = {}
        #: id(job) -> job, for jobs received and not yet started nor ended
        self.held: dict[int, Job] = {}

    def received(self, job: Job) -> None:
        self.held[id(job)] = job

    def started(self, job: Job) -> None:
        self.held.pop(id(job), None)
        name = job.headers.task
        self.total[name] = self.total.get(name, 0) + 1

    def finished(self, job: Job) -> None:  # revoked or expired before it started
        self.held.pop(id(job), None)

    def requeued(self, job: Job) -> None:
        self.held.pop(id(job), None)

    def reserved(self) -> list[Job]:
        """Jobs received and not started, oldest first."""
        return list(self.held.values())
