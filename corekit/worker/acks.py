"""What the worker owes the broker for the messages it took: acks, requeues
and dead letters, gathered from every thread and sent from the consumer's.

A message comes due for one of them in four ways:

- an early ack (the task acks early): the consumer appends the message to
  `Acks.pending` as the pool gets the job;
- a late ack of a job that stored no result: the dispatcher holds it
  (`Dispatcher.done`);
- a late ack released by the result writer once the job's result is stored
  (an ack never comes before its result), or, for a late-acked task that
  failed and must not be acked (``acks_on_failure_or_timeout=False``), a
  `FailedMessage`: that message is dead-lettered instead;
- a requeue: a pool hands back a job whose worker was lost
  (``reject_on_worker_lost``), from any thread.

`Acks.take` gathers the acks into one list, which the consumer sends with its
next fetch (`Transport.ack_and_fetch`: one broker round trip a turn) or on
its own (`Acks.send`); requeues and dead letters are sent by `take` at once.
Nothing is dropped when the broker fails: what a failed call carried is kept
and goes first after the reconnect.  When the lease lapses, the broker has
given every message this worker held to others, so nothing pending may be
sent, and the late acks of jobs still running are dropped as they come
(`Acks.forget_lease`).

All but `requeue` run on the consumer's thread, which alone talks to the
broker.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable, Iterable

from corekit.worker.job import FailedMessage

if TYPE_CHECKING:
    from corekit._speedups.dispatch import Dispatcher
    from corekit.messages import Message
    from corekit.transport import Transport
    from corekit.worker.result_writer import ResultWriter


class Acks:
    """The acks, requeues and dead letters due, and those of a lapsed lease
    that must never be sent."""

    def __init__(self, transport: Transport, dispatcher: Dispatcher, results: ResultWriter,
                 dead_letter: Callable[[Message, str], None]) -> None:
        """*dispatcher* is the consumer's `Dispatcher`; *dead_letter* moves a
        message to the dead-letter queue saying why (and tells whoever
        follows the jobs)."""
        self.transport = transport
        self._dispatched_acks: Callable[[], list[Message]] = dispatcher.take_acks
        self._stored_acks: Callable[[], list[Message]] = results.take_acks
        self._dead_letter = dead_letter
        #: messages to ack with the next `take`: early acks, and acks a failed
        #: broker call carried.  Changed in place only, never replaced, so
        #: that the consumer's loop may bind ``pending.append`` once.
        self.pending: list[Message] = []
        #: messages a pool handed back (worker lost), for `take` to requeue
        self._requeues: list[Message] = []
        self._requeue_lock = threading.Lock()
        #: late-acked messages of failed tasks, to dead-letter rather than ack
        self._failed: list[FailedMessage] = []
        #: id(message) -> message: late acks of the jobs that were running
        #: when the lease lapsed, not ours to send (`forget_lease`)
        self._orphans: dict[int, Message] = {}

    @property
    def orphans(self) -> int:
        """How many messages of a lapsed lease are still to come (running)."""
        return len(self._orphans)

    # -- the consumer's turn -----------------------------------------------------
    def take(self) -> list[Message]:
        """The messages due for an ack now, for the caller to send; requeues
        and dead letters of failed tasks are sent here, on their own (if the
        broker fails, what was not sent stays for the next `take`)."""
        acks = self._dispatched_acks()
        for stored in self._stored_acks():
            (self._failed if type(stored) is FailedMessage else acks).append(stored)
        pending = self.pending
        if pending:
            acks.extend(pending)
            pending.clear()
        if self._orphans:
            acks = self._without_orphans(acks)
        if self._requeues:
            self.flush_requeues()
        if self._failed:
            self.flush_failed()
        return acks

    def put_back(self, acks: list[Message]) -> None:
        """*acks* were taken but the broker call carrying them failed: they
        go first in the next `take`, after the reconnect."""
        self.pending[:0] = acks

    def send(self, acks: list[Message]) -> None:
        """Ack *acks* in one broker call; if it fails they are put back,
        never dropped (acking twice is harmless)."""
        if acks:
            try:
                self.transport.ack(acks)
            except Exception:
                self.put_back(acks)
                raise

    def flush(self) -> None:
        """Ack what is due in one call."""
        self.send(self.take())

    # -- requeues and dead letters -------------------------------------------------
    def requeue(self, message: Message) -> None:
        """Any thread: *message* goes back to its queue at the next `take`."""
        with self._requeue_lock:
            self._requeues.append(message)

    def flush_requeues(self) -> None:
        with self._requeue_lock:
            requeues, self._requeues = self._requeues, []
        if self._orphans:
            requeues = self._without_orphans(requeues)
        if not requeues:
            return
        try:
            self.transport.reject(requeues, requeue=True)
        except Exception:
            with self._requeue_lock:
                self._requeues[:0] = requeues
            raise

    def flush_failed(self) -> None:
        """Dead-letter, one by one, the messages of late-acked tasks that
        failed; what the broker refuses stays for the next flush."""
        failed = self._failed
        while failed:
            self._dead_letter(failed[0].message, failed[0].reason)
            del failed[0]

    # -- a lapsed lease --------------------------------------------------------------
    def forget_lease(self, running_late: Iterable[Message]) -> None:
        """The broker gave this worker's unacked messages to other workers:
        drop every ack, requeue and dead letter pending, and drop the late
        acks of *running_late* (the messages of late-acked jobs still
        running) when they come."""
        self._dispatched_acks()
        self._stored_acks()
        self.pending.clear()
        with self._requeue_lock:
            self._requeues = []
        self._failed = []
        self._orphans.update((id(message), message) for message in running_late)

    def _without_orphans(self, messages: list[Message]) -> list[Message]:
        """*messages* (and `_failed`) less the messages of a lapsed lease."""
        orphans = self._orphans
        if self._failed:
            self._failed = [f for f in self._failed if orphans.pop(id(f.message), None) is None]
        return [m for m in messages if orphans.pop(id(m), None) is None]
