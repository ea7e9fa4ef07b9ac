"""`Beat`: the scheduler loop that fires periodic tasks, one of many replicas.

Every beat syncs ``beat_schedule`` into the schedule store and competes
for the store's leader lease.  The leader keeps every enabled entry in a
heap ordered by its next run and sleeps until the earliest one, a change
to the schedule, or its lease renewal, whichever comes first; it never
polls entries.  Runs are fired through `ScheduleStore.fire`, which claims
each ``(entry, scheduled_at)`` once across all beats before its message is
published, so a lease hand-over, a paused leader or a restart never fires
a run twice.  Followers only try the lease; when the leader stops
renewing (``kill -9``), one of them takes over within ``beat_lease_timeout``
seconds, reloads the store and fires what came due meanwhile.
"""
from __future__ import annotations

import heapq
import logging
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import corekit.producer as producer
from corekit.plugins.beat.messages import RunMessages, mark_runs
from corekit.schedules.entry import ScheduleEntry, ScheduleError, entry_from_json
from corekit.schedules.periodic import PeriodicTasks, open_store
from corekit.schedules.store import Run
from corekit.schedules.timeline import due_runs, effective_schedule, first_pending, upcoming

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.schedules.store import ScheduleStore, StoredEntry

logger = logging.getLogger("corekit.beat")

#: runs fired per store round trip
BATCH = 500
#: seconds ahead of a run's time that the beat wakes to build its message
PREPARE_AHEAD = 0.1
#: runs of one burst whose messages are built ahead (the rest as they go)
PREBUILD = 5000
_TASK_ID_NAMESPACE = uuid.UUID("6c0b8b9e-3f43-4c1e-9a51-2f1d8c2f0b7a")


def run_task_id(name: str, base: float, scheduled_at: float) -> str:
    """A run's task id: the same on every beat, so a duplicate would show."""
    return str(uuid.uuid5(_TASK_ID_NAMESPACE, f"{name}\0{base!r}\0{scheduled_at!r}"))


class Slot:
    """One enabled entry as the leader tracks it."""

    __slots__ = ("entry", "schedule", "last_run_at", "changed_at", "next_at")

    def __init__(self, entry: ScheduleEntry, schedule: Any, stored: StoredEntry) -> None:
        self.entry = entry
        self.schedule = schedule
        self.last_run_at = stored.last_run_at
        self.changed_at = stored.changed_at
        self.next_at: float | None = None


class Beat:
    """One beat replica.  `run` blocks until `stop`."""

    def __init__(self, app: Corekit, store: ScheduleStore | None = None,
                 name: str | None = None) -> None:
        self.app = app
        conf = app.conf
        self.store = store if store is not None else open_store(app)
        self.holder = name or f"beat@{socket.gethostname()}.{uuid.uuid4().hex[:8]}"
        self.lease_timeout = float(conf.beat_lease_timeout)
        self.policy = str(conf.beat_missed_runs)
        self.late_window = max(float(conf.beat_late_window), 2 * self.lease_timeout)
        self.max_sleep = float(conf.beat_max_loop_interval)
        self.default_tz = conf.timezone
        self.stopped = threading.Event()
        self.leader = False
        #: store clock minus ours, measured at each lease renewal
        self.offset = 0.0
        self.slots: dict[str, Slot] = {}
        self._heap: list[tuple[float, str]] = []
        self._cursor = 0
        self._renew_at = 0.0
        self._store_down = False
        self._reported: set[tuple[str, str]] = set()
        self.messages = RunMessages(app)

    # -- the loop -----------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.offset

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        """Sync the configured entries, then lead or follow until `stop`."""
        self._with_store(lambda: PeriodicTasks(self.app, self.store).sync_config())
        logger.info("beat %s: started; lease %.1f s, missed runs %r", self.holder,
                    self.lease_timeout, self.policy)
        try:
            while not self.stopped.is_set():
                self._with_store(self.tick)
        finally:
            if self.leader:
                try:
                    self.store.release_lease(self.holder)
                except Exception:  # the store is away: the lease lapses by itself
                    pass
            self.leader = False
            logger.info("beat %s: stopped", self.holder)

    def _with_store(self, step: Any) -> Any:
        """Run *step*, retrying while the store is unreachable (logged once)."""
        delay = 0.1
        while not self.stopped.is_set():
            try:
                result = step()
            except ScheduleError:
                raise
            except Exception as exc:
                if not self._store_down:
                    logger.error("beat %s: schedule store unreachable (%s: %s); retrying",
                                 self.holder, type(exc).__name__, exc)
                    self._store_down = True
                logger.debug("beat %s: store call failed", self.holder, exc_info=True)
                self.leader = False
                self._renew_at = 0.0  # the next tick asks the store first
                self.stopped.wait(delay)
                delay = min(delay * 2, 1.0)
                continue
            self._store_up()
            return result
        return None

    def _store_up(self) -> None:
        if self._store_down:
            logger.warning("beat %s: schedule store is back", self.holder)
            self._store_down = False

    def tick(self) -> None:
        """Keep the lease, fire what is due, then sleep until there is more to do."""
        if time.monotonic() >= self._renew_at:
            self._keep_lease()
        if self.leader:
            self._fire_due()
        self._sleep()

    def _keep_lease(self) -> None:
        store_now = self.store.now()
        self._store_up()
        self.offset = store_now - time.time()
        was = self.leader
        self.leader = self.store.acquire_lease(self.holder, self.lease_timeout)
        every = self.lease_timeout / 4 if self.leader else min(0.5, self.lease_timeout / 4)
        self._renew_at = time.monotonic() + every
        if self.leader and not was:
            logger.info("beat %s: leading", self.holder)
            self._load()
            self._send_unsent()
        elif was and not self.leader:
            self._follow()

    def _follow(self) -> None:
        """Another beat holds the lease now (this one was paused or cut off)."""
        logger.warning("beat %s: lost the lease; following", self.holder)
        self.leader = False
        self.slots.clear()
        self._heap.clear()

    def _sleep(self) -> None:
        wake = self._renew_at - time.monotonic()
        if self.leader and self._heap:
            wake = min(wake, self._heap[0][0] - PREPARE_AHEAD - self.now())
        timeout = max(0.0, min(wake, self.max_sleep))
        if self.leader:
            if self.store.wait_for_change(self._cursor, timeout):
                self._apply_changes()
        else:
            self.stopped.wait(timeout)

    # -- entries ------------------------------------------------------------
    def _load(self) -> None:
        self._cursor, stored = self.store.load()
        self.slots.clear()
        self._heap.clear()
        for s in stored:
            self._track(s)
        logger.info("beat %s: %d periodic task(s) loaded", self.holder, len(self.slots))

    def _apply_changes(self) -> None:
        changes = self.store.changes(self._cursor)
        self._cursor = changes.cursor
        for name in changes.removed:
            self.slots.pop(name, None)
        for s in changes.changed:
            self.slots.pop(s.name, None)
            self._track(s)

    def _track(self, stored: StoredEntry) -> None:
        try:
            entry = entry_from_json(stored.name, stored.definition)
        except (ScheduleError, TypeError, ValueError) as exc:
            self._report(stored.name, "bad", "beat: skipping periodic task %r: %s",
                         stored.name, exc)
            return
        if not entry.enabled:
            return
        if entry.task not in self.app.tasks:  # once per task name, however many entries
            self._report(entry.task, "unknown", "beat: periodic task %r sends %r, which is not "
                         "registered here; it is sent anyway (a worker that knows it runs it)",
                         entry.name, entry.task)
        try:
            slot = Slot(entry, effective_schedule(entry, self.default_tz), stored)
            self._schedule(slot)
        except Exception as exc:  # one entry's bad data must not look like a store outage
            self._drop(entry.name, exc)
            return
        self.slots[entry.name] = slot

    def _drop(self, name: str, exc: BaseException) -> None:
        """Stop tracking one entry whose schedule cannot be computed (told once)."""
        self.slots.pop(name, None)
        self._report(name, "bad", "beat: skipping periodic task %r: %s: %s", name,
                     type(exc).__name__, exc)

    def _report(self, name: str, kind: str, msg: str, *args: Any) -> None:
        if (name, kind) not in self._reported:
            self._reported.add((name, kind))
            logger.warning(msg, *args)

    def _schedule(self, slot: Slot) -> None:
        slot.next_at = first_pending(slot.schedule, slot.changed_at, slot.last_run_at)
        if slot.next_at is not None:
            heapq.heappush(self._heap, (slot.next_at, slot.entry.name))

    # -- firing -------------------------------------------------------------
    def _fire_due(self) -> None:
        """Fire every run due by now, and those due within `PREPARE_AHEAD`
        once their time comes: their messages are built first, so at the due
        time only the claim and the publish are left."""
        horizon = self.now() + PREPARE_AHEAD
        due: dict[str, Slot] = {}
        while self._heap and self._heap[0][0] <= horizon:
            at, name = heapq.heappop(self._heap)
            slot = self.slots.get(name)
            if slot is not None and slot.next_at == at:  # else a stale heap item
                due[name] = slot
        runs = sorted(self._runs(due, horizon), key=lambda run: run.scheduled_at)
        built = {run: self._build(run) for run in runs[:PREBUILD]}
        for i in range(0, len(runs), BATCH):
            for run in runs[i:i + BATCH]:
                if run not in built:
                    built[run] = self._build(run)
            batch = [run for run in runs[i:i + BATCH] if built[run] is not None]
            if not batch:  # no message could be built: nothing is claimed
                continue
            early = batch[-1].scheduled_at - self.now()
            if early > 0 and self.stopped.wait(early):
                return
            if time.monotonic() >= self._renew_at:  # a long burst must not outlast the lease
                self._keep_lease()
            if not self.leader:
                return
            self._fire(batch, built)
            if not self.leader:
                return
        for slot in due.values():
            if slot.entry.name in self.slots:
                try:
                    self._next(slot, horizon)
                except Exception as exc:
                    self._drop(slot.entry.name, exc)

    def _runs(self, due: dict[str, Slot], now: float) -> list[Run]:
        runs: list[Run] = []
        for name, slot in list(due.items()):
            policy = slot.entry.missed or self.policy
            try:
                times = due_runs(slot.schedule, slot.changed_at, slot.last_run_at, now, policy,
                                 self.late_window)
            except Exception as exc:  # this entry's data, not the store
                self._drop(name, exc)
                del due[name]
                continue
            runs += [Run(name, t, run_task_id(name, slot.changed_at, t)) for t in times]
        return runs

    def _next(self, slot: Slot, now: float) -> None:
        """Re-queue *slot*: at its next pending run, or (when the policy left
        past runs unfired) at its next run after now."""
        policy = slot.entry.missed or self.policy
        slot.next_at = first_pending(slot.schedule, slot.changed_at, slot.last_run_at)
        if slot.next_at is not None and slot.next_at <= now and policy != "all":
            slot.next_at = upcoming(slot.schedule, slot.changed_at, slot.last_run_at, now)
        if slot.next_at is not None:
            heapq.heappush(self._heap, (slot.next_at, slot.entry.name))

    def _fire(self, runs: list[Run], built: dict[Run, Any]) -> None:
        sent: list[Any] = []

        def messages(claimed: Any, two_step: bool) -> list[Any]:
            # called again if the store's transaction is retried
            sent[:] = [built[r] for r in claimed]
            if two_step:  # a crash before the store records it sent means a resend
                mark_runs(claimed, sent, self.holder)
            producer.before_publish(sent)
            return sent

        claimed = self.store.fire(self.holder, runs, self.app.producer, messages,
                                  self.app.publish)
        for run in runs:
            built.pop(run, None)
        if sent:
            producer.after_publish(self.app, sent)
        for run in claimed:
            slot = self.slots.get(run.name)
            if slot is not None and (slot.last_run_at is None or run.scheduled_at >
                                     slot.last_run_at):
                slot.last_run_at = run.scheduled_at
        if len(claimed) < len(runs):
            self._lost_claims(runs, claimed)

    def _lost_claims(self, runs: list[Run], claimed: list[Run]) -> None:
        """Runs the store refused: the lease moved on, or another beat fired them."""
        lease = self.store.lease()
        if lease is None or lease[0] != self.holder:
            self._follow()
            self._renew_at = 0.0
            return
        got = set(claimed)
        for run in runs:
            if run not in got:
                stored = self.store.get(run.name)
                slot = self.slots.get(run.name)
                if stored is not None and slot is not None:
                    slot.last_run_at = stored.last_run_at

    def _build(self, run: Run) -> Any:
        """The message of *run*; None when its entry is gone or its message
        cannot be built (a router or serializer that raises: the entry is
        skipped and told once, never taken for a store outage)."""
        slot = self.slots.get(run.name)
        entry = slot.entry if slot is not None else self._stored_entry(run.name)
        if entry is None:
            return None
        try:
            return self.messages.build(entry, run.task_id)
        except Exception as exc:
            self._drop(run.name, exc)
            return None

    def _stored_entry(self, name: str) -> ScheduleEntry | None:
        stored = self.store.get(name)
        if stored is None:
            return None
        try:
            return entry_from_json(name, stored.definition)
        except ScheduleError:
            return None

    def _send_unsent(self) -> None:
        """Publish what a dead leader claimed and the store does not know
        as sent (same task ids).  It may have been sent: the messages carry
        a send id of their own, so workers run one send's copies only."""
        unsent = self.store.unsent_runs()
        if unsent:
            logger.warning("beat %s: sending %d run(s) a previous leader claimed but did not "
                           "record as sent", self.holder, len(unsent))
            built = [(run, self._build(run)) for run in unsent]
            built = [(run, m) for run, m in built if m is not None]
            messages = [m for _, m in built]
            mark_runs([run for run, _ in built], messages,
                      f"{self.holder}/{uuid.uuid4().hex[:12]}")
            self.app.publish_tasks(messages)  # with the publish signals
            self.store.confirm_runs(unsent)  # a removed or broken entry's run is dropped
