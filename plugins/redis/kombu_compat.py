"""Remote control and events with Celery's own tools on a shared Redis, in
kombu's layout.

A Celery client (``celery inspect ping``, Flower) on Redis speaks kombu's
virtual-AMQP layout, not corekit's: it PUBLISHes a request as a JSON
envelope on the Pub/Sub channel ``/{db}.celery.pidbox`` (kombu's
``keyprefix_fanout`` and the exchange), and reads replies from a list (its
reply queue ``<oid>.reply.celery.pidbox``) that it binds to the exchange
``reply.celery.pidbox`` by adding ``routing_key SEP pattern SEP queue`` to the
set ``_kombu.binding.reply.celery.pidbox``.

So a subscription to ``celery.pidbox`` also listens on that channel
(`from_envelope` turns the envelope into a `Message`), and every reply
published on ``reply.celery.pidbox`` is also LPUSHed, as a kombu envelope
(`to_envelope`), onto each list bound there with the reply's routing key
(`push_replies`), to expire 10 s later if nobody reads it.  A corekit client
binds nothing in kombu's set, so for its replies that is one SMEMBERS that
finds nothing; no request needs marking.

Events (``celeryev``) travel *only* in kombu's layout, so that ``celery
events``, Flower and corekit's own tools all see every worker, whichever
kind, and nothing arrives twice.  On Redis Celery makes the event exchange a
fanout, and kombu PUBLISHes each event as an envelope on
``/{db}.celeryev/<routing key>`` (its ``fanout_patterns``); a receiver
PSUBSCRIBEs ``/{db}.celeryev/*`` (its binding ``#`` with ``*`` for ``#``).
So `publish_events` PUBLISHes there, one pipeline a batch, and a
subscription to ``celeryev`` PSUBSCRIBEs `events_pattern` and filters the
routing keys itself (topic patterns), as kombu's glob cannot say ``task.#``.
A message with an empty routing key goes on ``/{db}.celeryev/`` (kombu would
use ``/{db}.celeryev``, which no event receiver hears).  kombu's channels
know no corekit ``prefix``: apps with different prefixes on one Redis
database see each other's events, as Celery apps do.
"""
from __future__ import annotations

import base64
import json
import uuid
from typing import Any, Sequence

from corekit.events.dispatcher import EVENT_EXCHANGE
from corekit.pidbox import PIDBOX, REPLY_PIDBOX
from corekit.messages import Message

#: kombu's separator of the fields of a binding.
SEP = "\x06\x16"
#: The exchanges whose kombu fanout channel a subscription also listens to.
KOMBU_FANOUT = frozenset({PIDBOX})
#: How long an unread reply list lives after a push, as kombu sets it for
#: Celery's reply queues (``control_queue_expires``, 10 s): a client that
#: went away leaves no list behind.
REPLY_EXPIRES_MS = 10_000
#: Envelope keys kombu adds to a message's properties in transit.
TRANSIT = ("body_encoding", "delivery_info", "delivery_tag")


def fanout_channel(client: Any, exchange: str) -> str:
    """kombu's Pub/Sub channel of a fanout *exchange* on *client*'s database."""
    return f"/{client.connection_pool.connection_kwargs.get('db', 0)}.{exchange}"


def events_pattern(client: Any) -> str:
    """The PSUBSCRIBE pattern of every event channel on *client*'s database."""
    return f"{fanout_channel(client, EVENT_EXCHANGE)}/*"


def routing_key_of(channel: bytes, pattern: bytes) -> str:
    """The routing key of an event that came on *channel* through
    `events_pattern` *pattern*: what its ``*`` stood for."""
    return channel[len(pattern) - 1:].decode(errors="replace")


def publish_events(client: Any, messages: Sequence[Message]) -> None:
    """PUBLISH each event where kombu would, in one pipeline."""
    base = fanout_channel(client, EVENT_EXCHANGE)
    pipe = client.pipeline(transaction=False)
    for message in messages:
        pipe.publish(f"{base}/{message.routing_key}", to_envelope(message, EVENT_EXCHANGE))
    pipe.execute()


def bindings_key(exchange: str) -> str:
    return f"_kombu.binding.{exchange}"


def from_envelope(data: bytes, exchange: str, routing_key: str | None = None) -> Message:
    """The message in a kombu JSON envelope (body base64 or text); its
    routing key is *routing_key* (the one its channel says) or else the
    envelope's ``delivery_info``."""
    envelope = json.loads(data)
    properties = dict(envelope.get("properties") or {})
    encoding = envelope.get("content-encoding") or "utf-8"
    body = envelope.get("body") or ""
    if properties.get("body_encoding") == "base64":
        raw = base64.b64decode(body)
    else:
        raw = body.encode(encoding) if isinstance(body, str) else bytes(body)
    info = properties.get("delivery_info") or {}
    for key in TRANSIT:
        properties.pop(key, None)
    return Message(body=raw, headers=dict(envelope.get("headers") or {}), properties=properties,
                   content_type=envelope.get("content-type") or "application/json",
                   content_encoding=encoding, exchange=exchange,
                   routing_key=(str(info.get("routing_key") or "") if routing_key is None
                                else routing_key))


def to_envelope(message: Message, exchange: str) -> bytes:
    """*message* as kombu's Redis transport stores it in a list or PUBLISHes it."""
    properties = {key: value for key, value in (message.properties or {}).items()
                  if key not in TRANSIT}
    properties.update(
        body_encoding="base64", delivery_tag=str(uuid.uuid4()),
        delivery_info={"exchange": exchange, "routing_key": message.routing_key})
    properties.setdefault("delivery_mode", 1)
    properties.setdefault("priority", 0)
    return json.dumps({
        "body": base64.b64encode(bytes(message.body)).decode(),
        "content-encoding": message.content_encoding, "content-type": message.content_type,
        "headers": message.headers or {}, "properties": properties}).encode()


def push_replies(client: Any, messages: Sequence[Message]) -> None:
    """LPUSH each reply onto the kombu lists bound to ``reply.celery.pidbox``
    with its routing key (the asking Celery client's reply queue)."""
    members = client.smembers(bindings_key(REPLY_PIDBOX))
    if not members:
        return
    queues: dict[str, list[str]] = {}
    for member in members:
        routing_key, _, queue = (member.decode() if isinstance(member, bytes) else member
                                 ).split(SEP)
        queues.setdefault(routing_key, []).append(queue)
    pipe = client.pipeline(transaction=False)
    for message in messages:
        for queue in queues.get(message.routing_key, ()):
            pipe.lpush(queue, to_envelope(message, REPLY_PIDBOX))
            pipe.pexpire(queue, REPLY_EXPIRES_MS)
    pipe.execute()
