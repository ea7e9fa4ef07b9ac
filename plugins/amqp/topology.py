"""What corekit declares on a RabbitMQ broker: task queues with their
exchanges and bindings, the dead-letter queue, and the delay ladder that
holds ETA messages on the broker.

The delay ladder: ``LEVELS`` queues ``corekit.delay.<i>``, each with a fixed
message TTL of 2**i milliseconds, chained through topic exchanges of the same
names.  A delayed message's routing key spells its delay in binary, most
significant bit first, then the name of its destination queue:
``"0.0.1. ... .1.0.<queue>"``.  At level *i* the message either waits in the
level's queue (bit set) or passes straight to the next level's exchange (bit
clear); a queue's expired messages are dead-lettered to the next level.
After level 0 the ``corekit.delay.deliver`` exchange hands the message to its
queue through a binding ``"*. ... .*.<queue>"``.  Every queue of the ladder
holds messages of one TTL only, so the broker expires them strictly in
order, and the worker holds none of them.
"""
from __future__ import annotations

from typing import Any

from corekit.queues import QueueSpec

#: 2**36 ms is about 795 days; a longer delay is re-delayed when it arrives.
LEVELS = 36
MAX_DELAY_MS = 2 ** LEVELS - 1
DELAY_PREFIX = "corekit.delay."
DELIVER_EXCHANGE = "corekit.delay.deliver"
DEAD_LETTER_QUEUE = "corekit.dlq"
#: The dead-letter queue, on the default exchange, without priorities.
DEAD_LETTER_SPEC = QueueSpec(DEAD_LETTER_QUEUE)


def level_name(level: int) -> str:
    return DELIVER_EXCHANGE if level < 0 else f"{DELAY_PREFIX}{level}"


def delay_routing_key(delay_ms: int, queue: str) -> str:
    """The ladder's routing key for *delay_ms* (clamped to `MAX_DELAY_MS`)."""
    delay_ms = max(0, min(MAX_DELAY_MS, delay_ms))
    bits = format(delay_ms, f"0{LEVELS}b")
    return ".".join(bits) + "." + queue


def _bit_pattern(level: int, bit: str) -> str:
    """Matches routing keys whose bit for *level* is *bit*."""
    return "*." * (LEVELS - 1 - level) + bit + ".#"


def declare_ladder(channel: Any) -> None:
    """Declare the delay ladder (idempotent on the broker)."""
    channel.exchange_declare(DELIVER_EXCHANGE, "topic", durable=True, auto_delete=False)
    for level in range(LEVELS):
        name = level_name(level)
        channel.exchange_declare(name, "topic", durable=True, auto_delete=False)
        channel.queue_declare(name, durable=True, auto_delete=False, arguments={
            "x-message-ttl": 2 ** level, "x-dead-letter-exchange": level_name(level - 1)})
    for level in range(LEVELS):
        name = level_name(level)
        channel.queue_bind(name, name, _bit_pattern(level, "1"))
        channel.exchange_bind(level_name(level - 1), name, _bit_pattern(level, "0"))


def bind_to_ladder(channel: Any, queue: str) -> None:
    """Let delayed messages for *queue* reach it when they are due."""
    channel.queue_bind(queue, DELIVER_EXCHANGE, "*." * LEVELS + queue)


def declare_queue(channel: Any, spec: QueueSpec) -> None:
    """Declare *spec*'s queue, its exchange and the binding between them."""
    channel.queue_declare(spec.name, durable=spec.durable, auto_delete=spec.auto_delete,
                          arguments=spec.queue_arguments or None)
    if spec.exchange:
        channel.exchange_declare(spec.exchange, spec.exchange_type, durable=spec.durable,
                                 auto_delete=False)
        channel.queue_bind(spec.name, spec.exchange, spec.routing_key)
