"""Malformed workflow parts in a message the worker runs.

A message whose callbacks, errbacks, chain or chord are not well formed
still runs its task, without those parts (`checked_embed`); a copy of the
message goes to the dead-letter queue naming them, and a chain left out
fails its well-formed steps so that nobody waits on them forever
(`dead_letter_copies`).  The check itself is `corekit.signature_check`.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corekit.messages import Message
    from corekit.worker.consumer import Consumer
    from corekit.worker.job import Job

logger = logging.getLogger("corekit.worker")

#: a dead letter's reason names this many malformed workflow parts at most
MAX_PROBLEMS_SHOWN = 5

#: (message, reason, the chain left out of it or None)
Copy = tuple["Message", str, Any]


def checked_embed(message: Message, embed: Any, copies: list[Copy]) -> dict[str, Any] | None:
    """*embed* without its malformed parts; when it had any, a copy of
    *message* with the reason is put on *copies*."""
    from corekit.signature_check import check_embed

    given = embed
    embed, problems = check_embed(embed)
    if problems:
        left_out = given.get("chain") if embed is not None and given.get("chain") \
            and not embed.get("chain") else None
        shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
        if len(problems) > MAX_PROBLEMS_SHOWN:
            shown += f"; and {len(problems) - MAX_PROBLEMS_SHOWN} more"
        copies.append((message, f"malformed workflow in the message body, left out (the "
                                f"task ran without it): {shown}", left_out))
    return embed


def dead_letter_copies(consumer: Consumer, copies: list[Copy], elsewhere: list[Job]) -> None:
    """A copy of each message whose task runs here without its malformed
    workflow parts goes to the dead-letter queue (the delivery itself is
    acked as usual), and a chain left out fails its well-formed steps.
    Not for one that does not run now (*elsewhere*): revoked or expired
    (nothing of it runs), or handed back to the broker until its ETA
    (looked at again when it comes back)."""
    skip = {id(job.message) for job in elsewhere}
    for message, reason, left_out in copies:
        if id(message) in skip:
            continue
        logger.error("Task %.100s[%.100s] runs without the malformed parts of its workflow; "
                     "a copy of its message is in the dead-letter queue: %s",
                     message.headers.get("task"), message.headers.get("id"), reason)
        consumer.transport.dead_letter(dataclasses.replace(message, delivery_tag=None), reason)
        if left_out is not None:
            fail_left_out_chain(consumer, message, left_out)


def fail_left_out_chain(consumer: Consumer, message: Message, chain: Any) -> None:
    """Store FAILURE under the known ids of a left-out chain's well-formed
    steps, and count the chord parts they owed."""
    from corekit.workflow import left_out_chain_failure, on_chord_parts

    headers = message.headers
    app, results = consumer.app, consumer.results
    metas, parts = left_out_chain_failure(app, chain, headers.get("task"), headers.get("id"))
    backend = results.backend
    if backend.needs_reply_to:
        for meta in metas:
            meta["reply_to"] = message.properties.get("reply_to")
    if metas or parts:
        results.submit(metas, None, (lambda: on_chord_parts(app, backend, parts))
                       if parts else None)
