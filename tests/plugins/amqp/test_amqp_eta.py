"""ETAs on RabbitMQ wait in the broker's delay ladder, not in the worker."""
from __future__ import annotations

import time

from corekit import Corekit
from corekit.plugins.amqp import topology
from corekit.testing import start_worker


def test_scheduled_tasks_wait_on_the_broker_not_in_the_worker(amqp_app: Corekit) -> None:
    @amqp_app.task(name="proj.stamp")
    def stamp() -> float:
        return time.time()

    for _ in range(500):
        stamp.apply_async(countdown=60)
    sent = time.time()  # before the call: its countdown starts inside it
    soon = stamp.apply_async(countdown=1)
    with start_worker(amqp_app, pool="threads", concurrency=2) as worker:
        ran_at = soon.get(timeout=10)
        assert sent + 1 <= ran_at < sent + 3
        transport = worker.consumer.transport
        assert len(worker.consumer.timer) == 0  # the worker holds none of the 500
        assert transport.deliveries.waiting() == 0
        admin = amqp_app.connection()
        waiting = sum(admin.queue_size(topology.level_name(i)) for i in range(topology.LEVELS))
        admin.close()
        assert waiting == 500
