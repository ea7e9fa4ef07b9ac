"""`ScheduleStore`: where periodic tasks, their run state, the beat leader's
lease and the per-run claims live (the ``schedule_stores`` plugin kind).

Every beat (``corekit beat`` or ``worker -B``), the ``corekit beat`` admin
commands and the web monitor of one deployment open the same store, chosen
by URL scheme (``beat_store_url``; by default the broker's URL, or the
result backend's when the broker has no store, as RabbitMQ has none).  A
plugin registers a store class per scheme through
``corekit_register_schedule_stores``; the docstrings below are the contract
every implementation follows, and ``tests/contract`` checks it.

How the beat uses it:

- **Definitions** are JSON text (`corekit.schedules.entry`), one per entry
  name, tagged with where they came from: ``"config"`` (``beat_schedule``,
  synced at every beat start) or ``"api"`` (``corekit beat add``, Python,
  the monitor).  Each change moves a store-wide *cursor*, so a beat holding
  100,000 entries fetches only what changed.
- **The lease** says which beat is the leader.  It is timed by the store's
  clock (the Redis server's, the SQLite file host's), never a beat's.
- **Runs** are claimed one per ``(entry, scheduled_at)``: `claim_runs`
  succeeds for a run only while the caller holds the lease and the entry's
  ``last_run_at`` is before ``scheduled_at``, and moves ``last_run_at`` to
  it in the same atomic step.  Two beats, a lease changing hands, or a
  paused ex-leader waking up can therefore never fire one run twice.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable, ClassVar, Mapping, NamedTuple, Sequence

__all__ = ["ScheduleStore", "StoredEntry", "Run", "Changes", "CursorPoller", "check_name",
           "check_definition", "check_put", "check_holder", "check_cursor", "check_runs",
           "check_takes"]

SOURCES = ("config", "api")


class StoredEntry(NamedTuple):
    """One entry as stored: its definition and its run state."""

    name: str
    #: the JSON text of `corekit.schedules.entry.ScheduleEntry.to_json`
    #: (another program may have written anything here: decode with care)
    definition: str
    #: ``"config"`` or ``"api"``
    source: str
    #: the scheduled time (Unix seconds) of the last claimed run; None: never ran
    last_run_at: float | None
    #: the task id of that run
    last_task_id: str | None
    #: how many runs were claimed
    total_run_count: int
    #: Unix seconds (store clock) when the definition was last written: an
    #: interval entry counts its runs from here when it never ran
    changed_at: float


class Run(NamedTuple):
    """One run of one entry."""

    name: str
    #: when it was due (Unix seconds): the run's identity with ``name``
    scheduled_at: float
    task_id: str


class Changes(NamedTuple):
    """What `ScheduleStore.changes` found since a cursor."""

    cursor: int
    #: added or changed entries (definition, enabled flag)
    changed: list[StoredEntry]
    #: names removed
    removed: list[str]


class ScheduleStore:
    """The contract.  Thread-safe; each method is one or a few round trips.

    Errors talking to the server raise the client library's own exceptions
    (the beat treats any exception as "the store is away" and retries);
    methods never return a half-done change.
    """

    scheme: ClassVar[str] = ""

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        self.options = dict(options or {})

    def close(self) -> None:
        """Release connections; idempotent."""

    # -- clock ---------------------------------------------------------------
    def now(self) -> float:
        """The store's clock, Unix seconds (leases and ``changed_at`` use it)."""
        raise NotImplementedError

    # -- definitions ---------------------------------------------------------
    def load(self) -> tuple[int, list[StoredEntry]]:
        """``(cursor, every entry)``, read in one consistent snapshot."""
        raise NotImplementedError

    def get(self, name: str) -> StoredEntry | None:
        """One entry, or None."""
        raise NotImplementedError

    def changes(self, cursor: int) -> Changes:
        """Entries added, changed (also enabled/disabled) or removed after
        *cursor*, and the cursor to ask from next.  An unknown (future or
        too old) cursor may answer with everything, as `load` would, in
        ``changed``."""
        raise NotImplementedError

    def wait_for_change(self, cursor: int, timeout: float) -> bool:
        """Block until the cursor moves past *cursor* (True) or *timeout*
        seconds pass (False).  Must not busy-poll: a blocking read, or at
        most a few cheap queries a second."""
        raise NotImplementedError

    def put(self, name: str, definition: str, source: str = "api") -> None:
        """Add or replace an entry's definition.  Run state is kept when the
        entry existed; ``changed_at`` is set to now.  Moves the cursor."""
        raise NotImplementedError

    def remove(self, name: str) -> bool:
        """Delete an entry and its run state; False if there was none.  Moves the cursor."""
        raise NotImplementedError

    def sync_config(self, definitions: Mapping[str, str]) -> None:
        """Make the ``"config"`` entries exactly *definitions*, atomically:
        put those that are new or whose text differs (also over an ``"api"``
        entry of the same name, which becomes ``"config"``), remove
        ``"config"`` entries not in it, leave ``"api"`` entries alone.
        Unchanged entries are not rewritten (their ``changed_at`` stays)."""
        raise NotImplementedError

    # -- the leader lease ----------------------------------------------------
    def acquire_lease(self, holder: str, ttl: float) -> bool:
        """Take the lease for *ttl* seconds if it is free or lapsed, or renew
        it if *holder* has it; False if someone else holds it."""
        raise NotImplementedError

    def release_lease(self, holder: str) -> None:
        """Give the lease up if *holder* has it (a clean shutdown), so another
        beat takes over at once."""
        raise NotImplementedError

    def lease(self) -> tuple[str, float] | None:
        """``(holder, seconds left)`` of a live lease, or None."""
        raise NotImplementedError

    # -- runs ----------------------------------------------------------------
    def claim_runs(self, holder: str, runs: Sequence[Run]) -> list[Run]:
        """Atomically, for each run in order: claim it if *holder* holds a
        live lease, the entry exists, and its ``last_run_at`` is None or
        earlier than ``scheduled_at``; a claim sets ``last_run_at``,
        ``last_task_id``, adds one to ``total_run_count`` and records the
        run as claimed but not yet sent.  Returns the runs claimed, in order."""
        raise NotImplementedError

    def confirm_runs(self, runs: Sequence[Run]) -> None:
        """Record claimed runs as sent (their message is on the broker)."""
        raise NotImplementedError

    def unsent_runs(self) -> list[Run]:
        """Runs claimed and never confirmed: a leader died between claiming
        and publishing them.  The next leader publishes them (with the same
        task id) and confirms them."""
        raise NotImplementedError

    def shares_transport(self, transport: Any) -> bool:
        """Whether `fire` can claim and publish on *transport* in one
        transaction (the same SQLite file, the same Redis database)."""
        return False

    def fire(self, holder: str, runs: Sequence[Run], transport: Any,
             make_messages: Callable[[Sequence[Run], bool], list[Any]],
             publish: Callable[[list[Any]], None]) -> list[Run]:
        """Claim *runs*, put ``make_messages(claimed, two_step)`` on the
        broker with ``publish``, confirm them; return the claimed runs.

        A store that `shares_transport` overrides this to claim and publish
        in one transaction (through the transport's own publish step), so
        not even a ``kill -9`` between the two leaves a run claimed and
        unsent; it calls ``make_messages(claimed, False)``.  Otherwise
        (``two_step`` True) a crash between ``claim_runs`` and
        ``confirm_runs`` leaves the runs unsent as far as the store knows,
        though the broker may have them: `unsent_runs` finds them and the
        next leader sends them again, so such messages carry a send id
        for `take_runs`."""
        claimed = self.claim_runs(holder, runs)
        if claimed:
            publish(make_messages(claimed, True))
            self.confirm_runs(claimed)
        return claimed

    def take_runs(self, runs: Sequence[tuple[str, float, str]]) -> list[bool]:
        """For each ``(name, scheduled_at, send_id)``, atomically: record
        *send_id* as the send whose copies of the run ``(name, scheduled_at)``
        may run, unless another send was recorded first; answer whether
        *send_id* is the recorded one.  A worker asks this (once per fetched
        batch) before running messages of two-step sends: a copy of another
        send is a second one and is dropped, while the broker's redelivery of
        the same copy (its worker died) still runs.  True for a run the store
        has no record of (pruned after a day, or its entry removed): nothing
        is known to drop it for."""
        raise NotImplementedError

    def recent_runs(self, name: str | None = None, limit: int = 100) -> list[tuple[Run, bool]]:
        """The latest *limit* runs (of *name*, or all), newest first, each
        with whether it was confirmed sent.  Run records are kept at least a
        day (and at least the last 100 per entry)."""
        raise NotImplementedError


# -- argument checks every store applies (same messages everywhere) ---------
def check_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"schedule entry name must be a non-empty string, got {name!r}")


def check_definition(name: str, definition: Any) -> None:
    if not isinstance(definition, str):
        raise TypeError(f"schedule entry {name!r}: definition must be JSON text (str), got "
                        f"{type(definition).__name__}; use ScheduleEntry.to_json()")


def check_put(name: Any, definition: Any, source: Any) -> None:
    """`ScheduleStore.put`'s arguments, checked."""
    check_name(name)
    check_definition(name, definition)
    if source not in SOURCES:
        raise ValueError(f"schedule entry {name!r}: source must be one of {SOURCES}, "
                         f"got {source!r}")


def check_holder(holder: Any) -> None:
    if not isinstance(holder, str) or not holder:
        raise ValueError(f"lease holder must be a non-empty string, got {holder!r}")


def check_cursor(cursor: Any) -> int:
    if not isinstance(cursor, int) or isinstance(cursor, bool):
        raise ValueError(f"cursor must be an integer from load() or changes(), got {cursor!r}")
    return cursor


def check_runs(runs: Sequence[Any]) -> list[Run]:
    """`claim_runs`' and `confirm_runs`' argument, checked."""
    return [Run(*run) for run in _check_triples(runs, "task_id")]


def check_takes(runs: Sequence[Any]) -> list[tuple[str, float, str]]:
    """`ScheduleStore.take_runs`' argument, checked."""
    return _check_triples(runs, "send id")


def _check_triples(runs: Sequence[Any], third: str) -> list[tuple[str, float, str]]:
    """``(name, scheduled_at, text)`` items checked, *scheduled_at* as a float."""
    checked = []
    for run in runs:
        name, scheduled_at, text = run
        check_name(name)
        if not isinstance(scheduled_at, (int, float)) or isinstance(scheduled_at, bool) or (
                not math.isfinite(scheduled_at)):
            raise ValueError(f"run of {name!r}: scheduled_at must be finite Unix seconds, "
                             f"got {scheduled_at!r}")
        if not isinstance(text, str) or not text:
            raise ValueError(f"run of {name!r}: {third} must be a non-empty string, "
                             f"got {text!r}")
        checked.append((name, float(scheduled_at), text))
    return checked


class CursorPoller:
    """`ScheduleStore.wait_for_change` for a store whose cursor is read with
    a query: read every *poll* seconds, and at once after a write through
    the same store object (`notify`)."""

    def __init__(self, poll: float) -> None:
        self.poll = poll
        self._changed = threading.Condition()

    def notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def wait(self, read_cursor: Callable[[], int], cursor: int, timeout: float) -> bool:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            if read_cursor() != cursor:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with self._changed:
                self._changed.wait(min(self.poll, left))
