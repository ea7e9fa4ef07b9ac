"""`PeriodicTasks`: manage the periodic tasks of an app's schedule store.

What ``corekit beat list|add|remove|enable|disable``, the web monitor and
user code use to change the schedule while beats run (they see a change
within a second)::

    from corekit.schedules import crontab
    from corekit.schedules.periodic import PeriodicTasks

    tasks = PeriodicTasks(app)
    tasks.add("nightly-report", "proj.tasks.report", crontab(hour=2, minute=30))
    tasks.disable("nightly-report")
    for row in tasks.list():
        print(row.name, row.next_run_at)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, NamedTuple, Sequence

from corekit.exceptions import ImproperlyConfigured
from corekit.schedules.entry import ScheduleEntry, ScheduleError, entry_from_config, \
    entry_from_json
from corekit.schedules.timeline import effective_schedule, first_pending

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.schedules.store import ScheduleStore, StoredEntry

__all__ = ["PeriodicTasks", "PeriodicTask", "add_periodic_task", "store_url", "open_store",
           "config_entries", "check_options", "app_timezone"]


def _scheme(url: str) -> str:
    return url.partition("://")[0]


def store_url(app: Corekit) -> str:
    """``beat_store_url``, else the broker's URL if a schedule store serves
    its scheme, else the result backend's; ImproperlyConfigured otherwise."""
    stores = app.plugins.registry("schedule_stores")
    explicit = app.conf.beat_store_url
    if explicit:
        if _scheme(explicit) not in stores:
            raise ImproperlyConfigured(
                f"beat_store_url {explicit!r}: no schedule store serves {_scheme(explicit)}:// "
                f"(installed: {', '.join(sorted(stores)) or 'none'})")
        return str(explicit)
    for url in (app.conf.broker, app.conf.backend):
        if _scheme(url) in stores:
            return str(url)
    raise ImproperlyConfigured(
        f"periodic tasks need a schedule store, and neither the broker "
        f"({_scheme(app.conf.broker)}://) nor the result backend has one: set "
        f"beat_store_url to a store URL ({', '.join(sorted(stores)) or 'none installed'})")


def open_store(app: Corekit) -> ScheduleStore:
    """A new connection to the app's schedule store (the caller closes it)."""
    url = store_url(app)
    cls = app.plugins.get("schedule_stores", _scheme(url))
    options = dict(app.conf.broker_transport_options or {})
    return cls(url, options)  # type: ignore[no-any-return]


def app_timezone(app: Corekit) -> str | None:
    """The ``timezone`` setting, checked (`ScheduleError` naming it):
    a mistyped zone would fail every crontab entry at every beat."""
    from zoneinfo import ZoneInfo

    zone = app.conf.timezone
    if zone:
        try:
            ZoneInfo(zone)
        except (KeyError, TypeError, ValueError, OSError):  # not found, not a zone name
            # a ScheduleError: the beat stops on it instead of retrying as for an outage
            raise ScheduleError(f"timezone {zone!r}: unknown time zone; use an IANA name "
                                f"such as 'Europe/London'") from None
    return zone  # type: ignore[no-any-return]


def config_entries(app: Corekit) -> dict[str, ScheduleEntry]:
    """``beat_schedule`` (after the app's signals added theirs), each entry
    checked: the first bad one raises `ScheduleError` naming it."""
    app.finalize()
    app_timezone(app)
    schedule = app.conf.beat_schedule or {}
    if not isinstance(schedule, Mapping):
        raise ScheduleError(f"beat_schedule must be a dict of entries, got "
                            f"{type(schedule).__name__}")
    entries = {str(name): entry_from_config(str(name), item) for name, item in schedule.items()}
    checked: set[tuple[str, str]] = set()
    for entry in entries.values():  # once per distinct (task, options): most share a few
        key = (entry.task, repr(sorted(entry.options.items())))
        if key not in checked:
            check_options(app, entry)
            checked.add(key)
    return entries


def check_options(app: Corekit, entry: ScheduleEntry) -> None:
    """Refuse send options ``send_task`` refuses (a typo such as ``expire``),
    naming the entry: every beat would otherwise skip the entry at start."""
    if entry.options:
        try:
            app.prepare_task(entry.task, (), {}, **entry.options)
        except (TypeError, ValueError) as exc:
            raise ScheduleError(f"periodic task {entry.name!r}: options: {exc}") from None


def add_periodic_task(app: Corekit, schedule: Any, sig: Any, args: Sequence[Any] = (),
                      kwargs: Mapping[str, Any] | None = None, name: str | None = None,
                      **options: Any) -> str:
    """`Corekit.add_periodic_task`: a ``beat_schedule`` entry from a signature."""
    if not hasattr(sig, "clone"):  # a task: its signature
        sig = sig.s() if hasattr(sig, "s") else sig
    sig = sig.clone(args, kwargs) if (args or kwargs) else sig
    key = name or repr(sig)
    item = {"schedule": schedule, "task": sig["task"], "args": tuple(sig["args"] or ()),
            "kwargs": dict(sig["kwargs"] or {}),
            "options": {**dict(sig.get("options") or {}), **options}}
    entry_from_config(key, item)
    app.conf.beat_schedule = {**(app.conf.beat_schedule or {}), key: item}
    return key


class PeriodicTask(NamedTuple):
    """One row of `PeriodicTasks.list`."""

    name: str
    #: the decoded entry; None when the stored definition is bad (see ``error``)
    entry: ScheduleEntry | None
    error: str | None
    source: str
    last_run_at: float | None
    last_task_id: str | None
    total_run_count: int
    #: Unix seconds of the next run not yet made, maybe past (None: disabled,
    #: broken or never again)
    next_run_at: float | None
    #: the app's ``timezone``: what a crontab without its own zone or the
    #: entry's ``tz`` reads (shown in `schedule_text`)
    default_tz: str | None = None

    @property
    def schedule_text(self) -> str:
        """The schedule as people read it, in the zone it runs in (a crontab
        without a zone of its own reads the entry's or the app's), or why the
        stored entry is bad."""
        if self.entry is None:
            return f"(bad: {self.error})"
        return repr(effective_schedule(self.entry, self.default_tz))

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values: what ``corekit beat list --json``
        prints and the web monitor's periodic-tasks API builds on."""
        entry = self.entry
        return {"name": self.name, "task": entry.task if entry else None,
                "schedule": self.schedule_text, "enabled": bool(entry and entry.enabled),
                "source": self.source, "error": self.error, "next_run_at": self.next_run_at,
                "last_run_at": self.last_run_at, "last_task_id": self.last_task_id,
                "total_run_count": self.total_run_count}


class PeriodicTasks:
    """The schedule store of *app*, entry by entry."""

    def __init__(self, app: Corekit, store: ScheduleStore | None = None) -> None:
        self.app = app
        self._store = store

    @property
    def store(self) -> ScheduleStore:
        if self._store is None:
            self._store = open_store(self.app)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> PeriodicTasks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -------------------------------------------------------------
    def row(self, stored: StoredEntry) -> PeriodicTask:
        """A stored entry decoded, with its next run computed."""
        try:
            entry: ScheduleEntry | None = entry_from_json(stored.name, stored.definition)
            error = None
        except ScheduleError as exc:
            entry, error = None, str(exc)
        next_at = None
        zone = app_timezone(self.app)
        if entry is not None and entry.enabled:
            sched = effective_schedule(entry, zone)
            try:
                next_at = first_pending(sched, stored.changed_at, stored.last_run_at)
            except (OverflowError, ValueError, OSError) as exc:  # a run time no date can show
                error = f"periodic task {stored.name!r}: no next run: {exc}"
        return PeriodicTask(stored.name, entry, error, stored.source, stored.last_run_at,
                            stored.last_task_id, stored.total_run_count, next_at, zone)

    def list(self) -> list[PeriodicTask]:
        """Every entry, sorted by name."""
        _, stored = self.store.load()
        return [self.row(s) for s in sorted(stored, key=lambda s: s.name)]

    def get(self, name: str) -> PeriodicTask | None:
        stored = self.store.get(name)
        return None if stored is None else self.row(stored)

    # -- changing ------------------------------------------------------------
    def add(self, name: str, task: str, schedule: Any, args: Sequence[Any] = (),
            kwargs: Mapping[str, Any] | None = None, options: Mapping[str, Any] | None = None,
            *, enabled: bool = True, missed: str | None = None, tz: str | None = None,
            replace: bool = False) -> ScheduleEntry:
        """Add an entry (``replace=True`` also changes an existing one)."""
        entry = ScheduleEntry(name, task, schedule, args, kwargs, options, enabled, missed, tz)
        return self.put(entry, replace=replace)

    def put(self, entry: ScheduleEntry, replace: bool = True) -> ScheduleEntry:
        """Store *entry*; ScheduleError if it exists and not *replace*."""
        definition = entry.to_json()
        app_timezone(self.app)
        check_options(self.app, entry)
        if not replace and self.store.get(entry.name) is not None:
            raise ScheduleError(f"periodic task {entry.name!r} exists (remove it first, or "
                                f"replace it)")
        self.store.put(entry.name, definition, "api")
        return entry

    def remove(self, name: str) -> bool:
        """Delete an entry; False if there was none.  An entry that comes from
        ``beat_schedule`` returns at the next beat start unless removed there too."""
        return self.store.remove(name)

    def enable(self, name: str) -> ScheduleEntry:
        return self._set_enabled(name, True)

    def disable(self, name: str) -> ScheduleEntry:
        return self._set_enabled(name, False)

    def _set_enabled(self, name: str, enabled: bool) -> ScheduleEntry:
        stored = self.store.get(name)
        if stored is None:
            raise ScheduleError(f"no periodic task called {name!r}")
        entry = entry_from_json(name, stored.definition).replace(enabled=enabled)
        self.store.put(name, entry.to_json(), stored.source)
        return entry

    def sync_config(self) -> dict[str, ScheduleEntry]:
        """Write ``beat_schedule`` into the store (a beat does it at start)."""
        entries = config_entries(self.app)
        texts = {name: entry.to_json() for name, entry in entries.items()}
        _, stored = self.store.load()
        for s in stored:  # an operator's enable/disable outlives restarts
            if s.source == "config" and s.name in texts and s.definition != texts[s.name]:
                entries[s.name] = _keep_enabled_flag(entries[s.name], s)
                texts[s.name] = entries[s.name].to_json()
        self.store.sync_config(texts)
        return entries


def _keep_enabled_flag(entry: ScheduleEntry, stored: StoredEntry) -> ScheduleEntry:
    """*entry* with the stored ``enabled`` flag when nothing else changed."""
    try:
        old = entry_from_json(stored.name, stored.definition)
    except ScheduleError:
        return entry
    return old if old.replace(enabled=entry.enabled) == entry else entry
