"""corekit `Message` to and from AMQP: properties, headers, and the headers
corekit adds on the way (delay ladder, dead letters) and takes off again."""
from __future__ import annotations

from typing import Any

from corekit.transport import Message

#: AMQP basic properties a `Message.properties` may carry.
PROPERTIES = ("correlation_id", "reply_to", "delivery_mode", "priority", "expiration",
              "message_id", "timestamp", "type", "user_id", "app_id")
ETA, EXCHANGE, ROUTING_KEY = "x-corekit-eta", "x-corekit-exchange", "x-corekit-routing-key"
DEAD_ID, REASON, FAILED_AT, QUEUE = ("x-corekit-dead-id", "x-corekit-reason",
                                     "x-corekit-failed-at", "x-corekit-queue")
#: What RabbitMQ adds when the delay ladder dead-letters a message onward.
DEATH_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue",
                 "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue",
                 "x-last-death-reason")


def to_amqp(m: Message, headers: dict[str, Any], persistent: bool = True) -> Any:
    """An ``amqp.Message`` for *m* with *headers*; persistent and with its
    priority unless ``persistent=False`` (broadcasts: only its own properties)."""
    import amqp

    props: dict[str, Any] = {k: v for k, v in m.properties.items()
                             if k in PROPERTIES and v is not None}
    if persistent:
        props.setdefault("delivery_mode", 2)
        props["priority"] = max(0, min(255, int(m.priority or 0)))
    props.update(content_type=m.content_type, content_encoding=m.content_encoding,
                 application_headers=headers)
    return amqp.Message(bytes(m.body), **props)


def from_amqp(raw: Any, **fields: Any) -> tuple[Message, dict[str, Any]]:
    """The `Message` in *raw* with *fields* set, and its headers (the same
    dict) for the caller to take corekit's own headers off."""
    props = raw.properties
    headers = dict(props.get("application_headers") or {})
    body = raw.body if isinstance(raw.body, bytes) else str(raw.body).encode()
    fields.setdefault("priority", int(props.get("priority") or 0))
    message = Message(body=body, headers=headers,
                      properties={k: props[k] for k in PROPERTIES if k in props},
                      content_type=props.get("content_type", ""),
                      content_encoding=props.get("content_encoding", ""), **fields)
    return message, headers
