"""Gates: worker parts that may keep jobs from running, by a header their
messages carry (`Consumer.gates`).

A gate is a callable asked once per fetched batch, with the jobs whose
message carries its header, before any of them is held or run; it answers
with one entry per job: None (run it) or why not (a string).  A job a
gate stops is acked and ends with nothing stored, like a task that raised
Ignore.  The beat's gate is the one in corekit: a worker drops the second
copy of a periodic task's run (`corekit.plugins.beat.run_gate`).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

if TYPE_CHECKING:
    from corekit.worker.job import Job

logger = logging.getLogger("corekit.worker")

Gate = Callable[[Sequence["Job"]], Sequence["str | None"]]


def pass_gates(gates: Mapping[str, Gate], jobs: list[Job]) -> tuple[list[Job], list[Job]]:
    """``(jobs that go on, jobs a gate stopped)``.  A gate that raises, or
    answers with the wrong number of entries, lets its jobs go on: a gate's
    own trouble never loses a task."""
    stopped: list[Job] = []
    for header, gate in gates.items():
        asked = [job for job in jobs if header in job.message.headers]
        if not asked:
            continue
        try:
            reasons = list(gate(asked))
            if len(reasons) != len(asked):
                raise ValueError(f"answered {len(reasons)} time(s) for {len(asked)} job(s)")
        except Exception:
            logger.exception("the %r gate failed; its %d task(s) run", header, len(asked))
            continue
        gone = set()
        for job, reason in zip(asked, reasons):
            if reason is not None:
                logger.info("Task %s[%s] not run: %s", job.headers.task, job.id, reason)
                stopped.append(job)
                gone.add(id(job))
        if gone:
            jobs = [job for job in jobs if id(job) not in gone]
    return jobs, stopped
