"""Deliveries whose AMQP properties py-amqp cannot read.

py-amqp decodes every short-string property (``content_type``,
``correlation_id``, ``reply_to``...) as UTF-8 while it reads the frame, and
an error there breaks the connection: the broker hands the message back and
the next consumer breaks on it too, forever.  `tolerant` wraps a
connection's frame reader so that such a header frame is read again with
the unreadable properties left out and the reason in the header
`UNREADABLE`; the transport dead-letters that message and goes on.
"""
from __future__ import annotations

from struct import unpack_from
from typing import Any, Callable

#: Set on a delivery whose properties could not all be read: why.
UNREADABLE = "x-corekit-unreadable"
#: Bytes before the property flags in a content header frame (class id,
#: weight, body size).
HEADER_PREFIX = 12


def tolerant(on_frame: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """*on_frame* (a py-amqp connection's ``on_inbound_frame``) that reads
    a content header with unreadable properties instead of failing."""
    def on_inbound_frame(frame: Any) -> Any:
        try:
            return on_frame(frame)
        except UnicodeDecodeError:
            frame_type, channel, payload = frame
            fixed = readable_header(payload) if frame_type == 2 else None
            if fixed is None:  # not the properties: someone else's error
                raise
            return on_frame((frame_type, channel, fixed))
    return on_inbound_frame


def readable_header(payload: bytes) -> bytes | None:
    """*payload* (a content header frame) re-encoded without the short-string
    properties that are not UTF-8, and with `UNREADABLE` naming them; None
    when every property reads."""
    from amqp.basic_message import Message
    from amqp.serialization import loads

    props: dict[str, Any] = {}
    bad: list[str] = []
    offset = HEADER_PREFIX
    flags, = unpack_from(">H", payload, offset)
    offset += 2
    for bit, (name, kind) in zip(range(15, 1, -1), Message.PROPERTIES):
        if not flags & (1 << bit):
            continue
        if kind == "s":
            size = payload[offset]
            raw = bytes(payload[offset + 1:offset + 1 + size])
            offset += 1 + size
            try:
                props[name] = raw.decode("utf-8")
            except UnicodeDecodeError:
                bad.append(f"AMQP property {name!r} is not UTF-8: {raw[:40]!r}")
        elif kind == "F":
            (props[name],), offset = loads("F", payload, offset)
        elif kind == "o":
            props[name] = payload[offset]
            offset += 1
        else:  # "L": the timestamp
            props[name], = unpack_from(">Q", payload, offset)
            offset += 8
    if not bad:
        return None
    props["application_headers"] = {**(props.get("application_headers") or {}),
                                    UNREADABLE: "; ".join(bad)}
    return bytes(payload[:HEADER_PREFIX]) + Message(**props)._serialize_properties()
