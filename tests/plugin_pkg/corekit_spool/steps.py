"""A worker bootstep from a plugin: it runs after the consumer is built and
says, under the ``spool_audit_label`` setting, when it starts and stops."""
from __future__ import annotations

import logging
from typing import Any

from corekit.bootsteps import Step
from corekit.worker.steps import ConsumerStep

logger = logging.getLogger("corekit_spool")


class AuditStep(Step):
    name = "SpoolAudit"
    requires = (ConsumerStep,)

    def create(self, worker: Any) -> None:
        self.label = worker.app.conf.spool_audit_label
        self.queues = list(worker.blueprint[ConsumerStep].consumer.queues)

    def start(self, worker: Any) -> None:
        logger.warning("%s: audit step started on %s", self.label, ",".join(self.queues))

    def stop(self, worker: Any) -> None:
        logger.warning("%s: audit step stopped", self.label)
