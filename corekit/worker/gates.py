"""Gates: worker parts that may keep a job from running, by a header its
message carries (`Consumer.gates`).

A gate is a callable taking the `Job` and answering None (run it) or why
not (a string).  The consumer asks it just before the pool would get the
job; a job a gate stops is finished with nothing to store and acked, like
a task that raised Ignore.  The beat's is the one in corekit: a worker
drops the second copy of a periodic task's run (`corekit.plugins.beat.run_gate`).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Mapping

if TYPE_CHECKING:
    from corekit.worker.job import Job

logger = logging.getLogger("corekit.worker")

Gate = Callable[["Job"], "str | None"]


def stopped_by_gate(gates: Mapping[str, Gate], job: Job) -> bool:
    """Whether a gate of a header *job*'s message carries stopped it (then
    it is finished, storing nothing).  A gate that raises lets the job run:
    a gate's own trouble never loses a task."""
    headers = job.message.headers
    for header, gate in gates.items():
        if header not in headers:
            continue
        try:
            reason = gate(job)
        except Exception:
            logger.exception("Task %s[%s]: the %r gate failed; the task runs",
                             job.headers.task, job.id, header)
            continue
        if reason is not None:
            logger.info("Task %s[%s] not run: %s", job.headers.task, job.id, reason)
            job.finish([])
            return True
    return False
