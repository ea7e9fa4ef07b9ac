"""Celery's remote-control wire ("pidbox"): requests, replies, who runs what.

A request is a JSON message on the fanout exchange ``celery.pidbox``:
``{"method", "arguments", "destination", "pattern", "matcher"}`` plus, when
the client wants replies, ``"ticket"`` (a uuid) and ``"reply_to"``
(``{"exchange": "reply.celery.pidbox", "routing_key": <client node id>}``);
headers ``clock`` (Lamport) and ``expires`` (epoch seconds, 0 = never).  Each
worker that the request is meant for (`is_for`) answers on the direct
exchange ``reply.celery.pidbox`` with the asker's node id as routing key,
headers ``ticket`` and ``clock``, body ``{hostname: reply}``.  Both sides of
corekit build their messages here, so they cannot drift apart.
"""
from __future__ import annotations

import json
import os
import re
import time
import uuid
from fnmatch import fnmatch
from typing import Any, Mapping, Sequence

from corekit.messages import Message

#: The fanout exchange of remote-control requests (Celery's name).
PIDBOX = "celery.pidbox"
#: The direct exchange replies travel on, routed by the asker's node id.
REPLY_PIDBOX = "reply.celery.pidbox"
#: How ``pattern`` is matched against a worker's hostname (kombu's matchers).
MATCHERS = ("glob", "pcre")
JSON = "application/json"


def node_id(instance: object) -> str:
    """A client's id for its replies' routing key, stable for *instance* in
    this process (kombu's ``oid_from``, without the thread: one subscription
    per call, filtered by ticket, lets threads share it)."""
    return str(uuid.uuid3(uuid.NAMESPACE_OID,
                          f"{uuid.getnode():x}-{os.getpid():x}-{id(instance):x}"))


def matches(hostname: str, pattern: str, matcher: str | None = None) -> bool:
    """Whether *hostname* matches *pattern*: shell glob (``"glob"``, the
    default) or a regular expression matched at the start (``"pcre"``)."""
    if matcher in (None, "glob"):
        return fnmatch(hostname, pattern)
    if matcher == "pcre":
        return re.match(pattern, hostname) is not None
    raise ValueError(f"unknown matcher {matcher!r}: use one of {', '.join(MATCHERS)}")


def is_for(request: Mapping[str, Any], hostname: str) -> bool:
    """Whether the worker *hostname* runs *request* (kombu's rule): named in
    its ``destination``; else matching its ``pattern`` when it has one and a
    ``matcher``; else every worker does."""
    destination = request.get("destination")
    if destination:
        return hostname in destination
    pattern, matcher = request.get("pattern"), request.get("matcher")
    if pattern and matcher:
        return matches(hostname, pattern, matcher)
    return True


def is_expired(headers: Mapping[str, Any], now: float | None = None) -> bool:
    """Whether a request's (or reply's) ``expires`` header has passed."""
    expires = headers.get("expires") or 0
    return bool(expires) and (time.time() if now is None else now) > float(expires)


def request_message(command: str, arguments: Mapping[str, Any],
                    destination: Sequence[str] | None = None, *,
                    pattern: str | None = None, matcher: str | None = None,
                    ticket: str | None = None, reply_to: str | None = None,
                    clock: int = 0, expires: float = 0.0) -> Message:
    """A request as kombu's mailbox sends it; with *ticket*, the reply goes
    to the routing key *reply_to*."""
    body: dict[str, Any] = {
        "method": command, "arguments": dict(arguments),
        "destination": list(destination) if destination else None,
        "pattern": pattern, "matcher": matcher}
    if ticket is not None:
        body["ticket"] = ticket
        body["reply_to"] = {"exchange": REPLY_PIDBOX, "routing_key": reply_to}
    return Message(body=json.dumps(body).encode(), headers={"clock": clock, "expires": expires},
                   properties={}, content_type=JSON, content_encoding="utf-8",
                   exchange=PIDBOX, routing_key="")


def reply_message(hostname: str, value: Any, request: Mapping[str, Any],
                  clock: int = 0) -> Message | None:
    """The reply of *hostname* to *request* (its decoded body), or None
    when the request wants none.  Published on `REPLY_PIDBOX`."""
    reply_to, ticket = request.get("reply_to"), request.get("ticket")
    if not reply_to or not ticket:
        return None
    return Message(body=json.dumps({hostname: value}).encode(),
                   headers={"ticket": ticket, "clock": clock}, properties={},
                   content_type=JSON, content_encoding="utf-8",
                   exchange=reply_to.get("exchange") or REPLY_PIDBOX,
                   routing_key=str(reply_to["routing_key"]))
