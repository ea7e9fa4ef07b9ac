"""corekit `Message` to and from AMQP: properties, headers, and the headers
corekit adds on the way (delay ladder, dead letters) and takes off again."""
from __future__ import annotations

import math
from typing import Any

from corekit.plugins.amqp.frames import UNREADABLE
from corekit.messages import Message

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


def stored_form_problem(headers: dict[str, Any]) -> str | None:
    """Why a delivery cannot be taken as it is stored, or None: properties
    py-amqp could not read (`UNREADABLE`, taken off), or corekit's own
    delay and route headers of the wrong type (a forged or foreign message)."""
    unreadable = headers.pop(UNREADABLE, None)
    if unreadable is not None:
        return str(unreadable)
    eta = headers.get(ETA)
    if eta is not None and (type(eta) not in (int, float) or not math.isfinite(eta)):
        return f"bad {ETA!r} header: {eta!r:.100}"
    for key in (EXCHANGE, ROUTING_KEY):
        value = headers.get(key)
        if value is not None and not isinstance(value, str):
            return f"bad {key!r} header: {value!r:.100}"
    return None
