"""Dead letters on RabbitMQ: copies in the durable queue ``corekit.dlq``,
the reason and the original route in corekit's headers."""
from __future__ import annotations

import time
import uuid
from typing import Any

from corekit.plugins.amqp import topology
from corekit.plugins.amqp.envelope import (DEAD_ID, EXCHANGE, FAILED_AT, QUEUE, REASON,
                                           ROUTING_KEY, from_amqp)
from corekit.messages import Message
from corekit.transport import DeadLetter


def letter_for(message: Message, reason: str) -> Message:
    """The copy of *message* that goes to the dead-letter queue."""
    return Message(body=message.body, content_type=message.content_type,
                   content_encoding=message.content_encoding,
                   properties=dict(message.properties), priority=message.priority,
                   headers={**message.headers, DEAD_ID: uuid.uuid4().hex, REASON: reason,
                            FAILED_AT: time.time(), QUEUE: message.queue,
                            EXCHANGE: message.exchange, ROUTING_KEY: message.routing_key},
                   queue=topology.DEAD_LETTER_QUEUE)


def take_letters(channel: Any) -> list[tuple[int, DeadLetter]]:
    """Every dead letter with its delivery tag, taken unacknowledged on
    *channel* (closing the channel gives back what was not acked)."""
    topology.declare_queue(channel, topology.DEAD_LETTER_SPEC)
    out = []
    while True:
        raw = channel.basic_get(topology.DEAD_LETTER_QUEUE, no_ack=False)
        if raw is None:
            return out
        message, headers = from_amqp(raw)
        dead_id, reason = headers.pop(DEAD_ID, ""), headers.pop(REASON, "")
        failed_at = float(headers.pop(FAILED_AT, 0.0))
        message.queue = headers.pop(QUEUE, "celery")
        message.exchange = headers.pop(EXCHANGE, "")
        message.routing_key = headers.pop(ROUTING_KEY, "")
        out.append((raw.delivery_info["delivery_tag"],
                    DeadLetter(dead_id, message, reason, failed_at)))
