"""The worker's hot loop: fetch a batch, decode, route, dispatch, ack.

Its parts live beside it: the timer holding early and rate-limited jobs
(`corekit.worker.eta_timer`), the rate limiters (`corekit.worker.rate_limits`),
what remote control changes while it runs (`corekit.worker.live_settings`),
the acks, requeues and dead letters owed to the broker (`corekit.worker.acks`),
the handling of malformed workflow parts (`corekit.worker.malformed`), and
the gates that may keep a job from running (`corekit.worker.gates`).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Sequence

from corekit import signals
from corekit._speedups import Dispatcher, decode_batch
from corekit.exceptions import ContentDisallowed, DecodeError, LeaseLost
from corekit.worker.acks import Acks
from corekit.worker.eta_timer import EtaTimer
from corekit.worker.gates import Gate, pass_gates
from corekit.worker.job import Job, TaskOptions
from corekit.worker.listeners import JobListener, JobTracker
from corekit.worker.live_settings import LiveSettings
from corekit.worker.malformed import checked_embed, dead_letter_copies
from corekit.worker.rate_limits import RateLimits
from corekit.worker.revoked import Revoked

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.pool import Pool
    from corekit.messages import Message
    from corekit.task import Task
    from corekit.transport import Transport
    from corekit.worker.result_writer import ResultWriter

logger = logging.getLogger("corekit.worker")

POLL_TIMEOUT = 0.5
#: A message due this close to now runs now rather than going back to the broker.
ETA_SLACK = 0.005
MAX_RETRY_DELAY = 5.0


class Consumer:
    """Moves messages from the transport into the pool.

    Everything that touches the transport happens on the thread that calls
    `run`; pool threads only report finished jobs through the dispatcher.
    """

    def __init__(self, app: Corekit, transport: Transport, results: ResultWriter, pool: Pool,
                 queues: Sequence[str], hostname: str, prefetch_multiplier: int) -> None:
        self.app = app
        self.transport = transport
        self.results = results
        self.pool = pool
        self.hostname = hostname
        self.tasks = app.tasks
        self.codecs = app.codecs
        self.accept = self.codecs.accepted_types(app.conf.accept_content)
        self.max_body = int(app.conf.worker_max_message_size)
        self.dispatcher = Dispatcher(self._hand_to_pool, pool.concurrency)
        #: early messages and rate-limited jobs, held unacked until due
        self.timer = EtaTimer()
        #: revocations this worker knows (fed by the control step)
        self.revoked = Revoked(float(app.conf.worker_revokes_expire))
        #: task id -> the job the pool runs now (for revoke with terminate)
        self.running: dict[str, Job] = {}
        self.delayed_by_broker = "delayed_delivery" in transport.capabilities
        self.wake = threading.Event()
        self.stopping = threading.Event()
        #: queues, prefetch and rate limits, changed by remote control
        self.live = LiveSettings(
            queues, prefetch_multiplier, pool.concurrency, self.dispatcher,
            None if app.conf.worker_disable_rate_limits
            else RateLimits(transport, self.tasks.values()), self.wake)
        #: the acks, requeues and dead letters owed to the broker
        self.acks = Acks(transport, self.dispatcher, results, self.dead_letter)
        #: the pool got a job whose task acks early (bound once: per message)
        self._ack_early = self.acks.pending.append
        self._trouble = 0
        #: turns of the loop so far, failed ones too: a health check sees the
        #: loop make progress (an idle turn lasts at most POLL_TIMEOUT, a failed
        #: one its back-off, at most MAX_RETRY_DELAY, and the reconnect)
        self.turns = 0
        #: why the last turn failed while the broker is failing (None: it is not)
        self.broker_error: str | None = None
        #: the lease is renewed before a job starts when it was last
        #: confirmed longer ago than this (the process was paused, say)
        self._renew_after = (transport.lease_timeout / 2 if "lease" in transport.capabilities
                             else float("inf"))
        self._options: dict[str, TaskOptions] = {}
        #: counts and holds jobs for remote inspection and heartbeats
        self.tracker = JobTracker()
        #: worker parts following the jobs (the tracker, task events), see
        #: `JobListener`; once the worker runs, replace the list whole (the
        #: loop may be iterating over it), never change it in place
        self.listeners: list[JobListener] = [self.tracker]
        #: header name -> `Gate` (`corekit.worker.gates`); a worker part adds
        #: one when it starts, replacing the dict whole, never in place
        self.gates: dict[str, Gate] = {}

    @property
    def queues(self) -> list[str]:
        """The queues consumed now (`LiveSettings.queues`)."""
        return self.live.queues

    @property
    def prefetch_limit(self) -> int:
        return self.live.prefetch_limit

    @property
    def waiting(self) -> dict[int, tuple[float, Job]]:
        """What the timer holds: id(job) -> (due, job), for inspection."""
        return self.timer.waiting

    # -- the loop -------------------------------------------------------------
    def run(self) -> None:
        """Consume until `stop` is called, then requeue what was prefetched
        and wait for running tasks (warm shutdown)."""
        try:
            while not self.stopping.is_set():
                try:
                    self.step()
                except LeaseLost as exc:
                    self.lease_lost(exc)
                except Exception as exc:  # the broker went away: wait and go on
                    self.broker_trouble(exc)
                else:
                    if self._trouble:
                        logger.warning("Broker connection is back after %d failed attempt(s)",
                                       self._trouble)
                        self._trouble = 0
                        self.broker_error = None
                self.turns += 1
        finally:
            self.drain()

    def step(self) -> None:
        """One turn: ack what is done and fetch what the pool can take (one
        broker round trip where the transport can), then hand work to the
        pool; acks of tasks finished meanwhile go with the next turn's
        fetch, or at once when this turn is going to wait."""
        acks = self.acks.take()
        timer = self.timer
        held = len(timer)
        if held:
            self.release_due()
            held = len(timer)
        dispatcher, live = self.dispatcher, self.live
        # rate-limited jobs waiting in the timer count against the prefetch
        want = dispatcher.wants(max(0, live.prefetch_limit - held))
        idle_broker = dispatcher.ready_count == 0
        got: list[Message] = []
        if want:
            timeout = self._poll_timeout() if idle_broker else 0.0
            try:
                got = self.transport.ack_and_fetch(acks, live.queues, want, timeout)
            except Exception:
                self.acks.put_back(acks)  # sent again after the reconnect
                raise
            if got:
                self.receive(got)
        else:
            self.acks.send(acks)
        if self.stopping.is_set():  # a warm shutdown starts no task after it was asked for
            return
        transport = self.transport
        if dispatcher.ready_count and (transport.lease_lapsed or time.monotonic()
                                       - transport.lease_renewed > self._renew_after):
            transport.renew_lease()  # LeaseLost: what is ready may be running elsewhere
        dispatcher.dispatch()
        if not got and (not want or not idle_broker):
            self.acks.flush()
            self.wake.wait(self._poll_timeout())
            self.wake.clear()

    def broker_trouble(self, exc: Exception) -> None:
        """Log the first failure in a row on one line (masked URL; each
        attempt's traceback at DEBUG; an error that is not the connection's
        keeps its traceback), then back off (0.1 s doubling to 5 s) before
        the next attempt reconnects."""
        from corekit.worker.startup import is_connection_error, one_line_reason

        self._trouble += 1
        self.broker_error = one_line_reason(exc)
        delay = min(MAX_RETRY_DELAY, 0.1 * 2 ** (self._trouble - 1))
        if self._trouble == 1:
            logger.error("Broker error, will retry with backoff (0.1 s doubling to %g s): "
                         "%s: %s", MAX_RETRY_DELAY, self.transport.describe(),
                         one_line_reason(exc),
                         exc_info=None if is_connection_error(exc) else exc)
        logger.debug("Broker failing (attempt %d)", self._trouble, exc_info=exc)
        try:
            self.transport.close()
        except Exception:  # closing a broken connection may fail too
            pass
        self.stopping.wait(delay)

    def lease_lost(self, exc: LeaseLost) -> None:
        """The broker gave this worker's unacked messages to other workers
        (it was paused, or cut off, past its lease): drop every job not
        started, and never ack, requeue or dead-letter a message of the
        lapsed lease.  Running jobs finish (they cannot be un-run); their
        results are stored, their acks dropped."""
        dropped = self.dispatcher.drain_ready() + self.timer.drain()
        running = list(self.running.values())
        self.acks.forget_lease(job.message for job in running if job.acks_late)
        for listener in self.listeners:
            for job in dropped:
                listener.requeued(job)
        logger.warning("Broker lease lost (%s): dropped %d prefetched task(s) without running "
                       "them; %d running task(s) finish here unacknowledged", exc, len(dropped),
                       len(running))

    def _poll_timeout(self) -> float:
        due = self.timer.next_due()
        if due is None:
            return POLL_TIMEOUT
        return max(0.0, min(POLL_TIMEOUT, due - time.time()))

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    # -- receiving --------------------------------------------------------------
    def receive(self, batch: list[Message]) -> None:
        """Sort a fetched batch into runnable jobs, timer entries, messages
        to hand back to the broker and dead letters.  Everything in memory is
        queued before any broker I/O, so a broker error midway strands
        nothing that was already decoded."""
        good, bad = decode_batch(batch)
        dead: list[tuple[Message, str]] = list(bad)
        #: messages that run without their malformed workflow parts (and
        #: the chain left out of each, if it was)
        copies: list[tuple[Message, str, Any]] = []
        now = time.time()
        ready: list[Job] = []
        to_broker: list[Job] = []
        doomed: list[Job] = []  # revoked or expired: stored as REVOKED, never run
        any_revoked = bool(self.revoked)  # asked once a batch, not once a message
        jobs = [job for job in (self.make_job(h, dead, copies) for h in good) if job is not None]
        stopped: list[Job] = []
        if self.gates:
            jobs, stopped = pass_gates(self.gates, jobs)
        for job in jobs:
            headers = job.headers
            if ((headers.expires is not None or any_revoked)
                    and self.stop_reason(job, now) is not None):
                doomed.append(job)
            elif headers.eta is not None and headers.eta > now + ETA_SLACK:
                if self.delayed_by_broker:
                    to_broker.append(job)
                else:
                    self.timer.hold(headers.eta, job)
            else:
                ready.append(job)
        if doomed:
            self.dispatcher.add(doomed)
        rate_limits = self.live.rate_limits
        if ready and rate_limits is not None:
            ready = rate_limits.admit(ready, self.timer.hold)
        if ready:
            self.dispatcher.add(ready)
        if to_broker:
            self.return_to_broker(to_broker)
        if stopped:
            self.drop(stopped)
        for message, reason in dead:
            self.dead_letter(message, reason)
        if copies:
            dead_letter_copies(self, copies, doomed + to_broker)

    def make_job(self, headers: Any, dead: list[tuple[Message, str]],
                 copies: list[tuple[Message, str, Any]]) -> Job | None:
        """Decode the body; what cannot run here goes on *dead* with why.
        Workflow parts (callbacks, errbacks, chain, chord) that are not
        well formed are left out of the job, and a copy of the message goes
        on *copies* naming them."""
        message = headers.message
        task = self.tasks.get(headers.task)
        if task is None:
            task = self.find_task(headers.task, message)
            if task is None:
                dead.append((message, f"unknown task {headers.task!r}: not registered in "
                                      f"this worker"))
                return None
        try:
            body = self.codecs.decode(message.body, headers.content_type, headers.compression,
                                      self.accept, self.max_body)
        except (ContentDisallowed, DecodeError) as exc:
            dead.append((message, str(exc)))
            return None
        if not (isinstance(body, (list, tuple)) and len(body) == 3
                and isinstance(body[0], (list, tuple)) and isinstance(body[1], dict)):
            dead.append((message, "malformed body: expected [args, kwargs, embed] "
                                  "(protocol v2)"))
            return None
        embed = body[2]
        if embed is not None and (embed.__class__ is not dict or embed.get("callbacks")
                                  or embed.get("errbacks") or embed.get("chain")
                                  or embed.get("chord")):
            embed = checked_embed(message, embed, copies)
        options = self._options.get(headers.task)
        if options is None:
            options = TaskOptions(task)
            if self.tasks.get(headers.task) is task:  # not one a plugin made for one message
                self._options[headers.task] = options
        job = Job(headers, task, options, (list(body[0]), body[1], embed), self.hostname,
                  self.results, self._job_done, self._job_requeued)
        if signals.task_received.receivers:
            signals.task_received.send(self, request=job.request())
        for listener in self.listeners:
            listener.received(job)
        return job

    def find_task(self, name: str, message: Message) -> Task[Any, Any] | None:
        """What a plugin makes of a task name not registered here
        (`Corekit.find_task`); None, logged, when a plugin fails."""
        try:
            return self.app.find_task(name, message.headers if isinstance(message.headers, dict)
                                      else None)
        except Exception:
            logger.exception("finding task %.200r failed", name)
            return None

    def dead_letter(self, message: Message, reason: str) -> None:
        task_id = message.headers.get("id") if isinstance(message.headers, dict) else "?"
        logger.error("Moved message %.100s to the dead-letter queue: %s", task_id, reason)
        self.transport.dead_letter(message, reason)
        for listener in self.listeners:
            listener.rejected(message, reason)

    def drop(self, jobs: list[Job]) -> None:
        """Ack the messages of jobs a gate stopped; they end storing nothing."""
        self.transport.ack([job.message for job in jobs])
        for listener in self.listeners:
            for job in jobs:
                listener.finished(job)

    def return_to_broker(self, jobs: list[Job]) -> None:
        """A message that arrived before its ETA (a producer that did not ask
        for broker-side delay) goes back to the broker to wait there."""
        copies = []
        for job in jobs:
            m = job.message
            copies.append(type(m)(body=m.body, headers=m.headers, properties=m.properties,
                                  content_type=m.content_type,
                                  content_encoding=m.content_encoding, queue=m.queue,
                                  exchange=m.exchange, routing_key=m.routing_key,
                                  eta=job.headers.eta, priority=m.priority))
        self.transport.publish(copies)
        self.transport.ack([job.message for job in jobs])
        for listener in self.listeners:
            for job in jobs:
                listener.requeued(job)

    def release_due(self) -> None:
        """Jobs the timer releases go to the pool; an early message's job
        may still have to wait for a rate-limit token."""
        due = self.timer.pop_due(time.time())
        if due:
            rate_limits = self.live.rate_limits
            if rate_limits is not None:
                due = rate_limits.admit(due, self.timer.hold)
            if due:
                self.dispatcher.add(due)

    # -- dispatching and acking ----------------------------------------------------
    def stop_reason(self, job: Job, now: float) -> str | None:
        """Why *job* must not run (``expired``, ``revoked``), or None: the one
        place a message's ``expires`` is checked.  Asked on receipt (a doomed
        job takes no timer slot and no rate-limit token) and again just before
        the pool gets it (it may have expired or been revoked while it
        waited); a job stopped here is stored as REVOKED and never runs."""
        expires = job.headers.expires
        if expires is not None and expires < now:
            return "expired"
        if self.revoked:
            return self.revoked.reason(job.id, job.message.headers)
        return None

    def _hand_to_pool(self, job: Job) -> None:
        if not job.acks_late:
            self._ack_early(job.message)
        if job.headers.expires is not None or self.revoked:
            reason = self.stop_reason(job, time.time())
            if reason is not None:
                logger.info("Task %s[%s] %s: not run", job.headers.task, job.id, reason)
                job.revoke(reason)
                return
        self.running[job.id] = job
        job.started_at = time.time()
        for listener in self.listeners:  # the tracker at least
            listener.started(job)
        self.pool.apply(job)

    def terminate(self, task_id: str, signum: int) -> bool:
        """Any thread: kill *task_id* where it runs, if it runs here and the
        pool can (a revoke with ``terminate=True``); whether it was running."""
        job = self.running.get(task_id)
        if job is None:
            return False
        if not self.pool.terminate(job, signum):
            logger.warning("Task %s[%s] is revoked, but the %s pool cannot stop it: it runs "
                           "to its end", job.headers.task, task_id, self.pool.name)
        return True

    def _job_done(self, job: Job, ack: Message | None) -> None:
        for listener in self.listeners:
            listener.finished(job)
        self.running.pop(job.id, None)
        self.dispatcher.done(job, ack)
        if not self.wake.is_set():  # setting it takes a lock and notifies
            self.wake.set()

    def _job_requeued(self, job: Job) -> None:
        """Any thread: *job*'s message goes back to the broker at the next
        `Acks.take`, and its slot is free."""
        self.acks.requeue(job.message)
        for listener in self.listeners:
            listener.requeued(job)
        self.running.pop(job.id, None)
        self.dispatcher.done(job, None)
        self.wake.set()

    def drain(self) -> None:
        """Requeue prefetched messages, wait for running tasks, ack them."""
        waiting = self.dispatcher.drain_ready() + self.timer.drain()
        if waiting:
            self.transport.reject([job.message for job in waiting], requeue=True)
            logger.info("Requeued %d prefetched message(s)", len(waiting))
            for listener in self.listeners:
                for job in waiting:
                    listener.requeued(job)
        while self.dispatcher.inflight:
            self.wake.wait(POLL_TIMEOUT)
            self.wake.clear()
            self.acks.flush()
        self.results.flush()
        self.acks.flush()
