"""`BeatStep`: a beat inside a worker (``corekit worker -B``)."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from corekit.bootsteps import Step
from corekit.worker.steps import ConsumerStep

if TYPE_CHECKING:
    from corekit.worker import Worker


class BeatStep(Step):
    """Runs `corekit.plugins.beat.service.Beat` on a thread of its own while
    the worker runs.  Every ``-B`` worker may run one: they share one
    schedule store, and only the lease holder fires.  It starts after the
    consumer (so after the pool: a prefork pool forks its children before
    the beat's thread and connections exist) and stops before it."""

    requires = (ConsumerStep,)

    def enabled(self, worker: Worker) -> bool:
        return bool(worker.app.conf.worker_beat)

    def create(self, worker: Worker) -> None:
        from corekit.plugins.beat.service import Beat

        self.beat = Beat(worker.app, name=f"beat@{worker.hostname}")
        self.thread = threading.Thread(target=self.beat.run, name="corekit-beat", daemon=True)

    def start(self, worker: Worker) -> None:
        self.thread.start()

    def stop(self, worker: Worker) -> None:
        self.beat.stop()
        self.thread.join(timeout=10)
        self.beat.store.close()


class RunGateStep(Step):
    """Every worker, with or without ``-B``: drops the second copy of a
    periodic task's run that a new beat leader sent again
    (`corekit.plugins.beat.run_gate`).  It opens the schedule store only
    when a message asks for it."""

    requires = (ConsumerStep,)

    def create(self, worker: Worker) -> None:
        from corekit.plugins.beat.run_gate import RunGate

        self.gate = RunGate(worker.app)

    def start(self, worker: Worker) -> None:
        from corekit.plugins.beat.messages import RUN_HEADER

        consumer = worker.blueprint[ConsumerStep].consumer
        consumer.gates = {**consumer.gates, RUN_HEADER: self.gate}

    def stop(self, worker: Worker) -> None:
        self.gate.close()
