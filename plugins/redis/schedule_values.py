"""What the Redis schedule store reads and takes: stored values decoded with
care (another program may have written anything into its hashes: an
unreadable number is None or 0, a definition comes back as it is), run ids,
and the checks on callers' arguments, each failing with a one-line error
naming the argument."""
from __future__ import annotations

import math
from typing import Any, Sequence

from corekit.schedules.store import Run, StoredEntry

# -- decoding what is stored (another program may have written anything) ------
def decode_text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def decode_number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def decode_count(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def stored_entry(name: Any, definition: Any, source: Any, changed_at: Any, last_run: Any,
                 last_task: Any, count: Any) -> StoredEntry:
    """A `StoredEntry` from its hash fields as Redis returned them (bytes or None)."""
    return StoredEntry(
        name=decode_text(name), definition=decode_text(definition),
        source="config" if source == b"config" else "api",
        changed_at=decode_number(changed_at) or 0.0, last_run_at=decode_number(last_run),
        last_task_id=None if last_task is None else decode_text(last_task),
        total_run_count=decode_count(count))


def run_id(run: Run) -> str:
    """A run's member in the run sets (``beat_claim.lua`` builds the same)."""
    return f"{run.scheduled_at!r}|{run.name}"


def run_args(runs: Sequence[Run]) -> list[str]:
    return [arg for run in runs for arg in (run.name, repr(run.scheduled_at), run.task_id)]


# -- checking what callers pass ------------------------------------------------
def check_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"schedule entry name must be a non-empty string, got {name!r}")


def check_definition(name: str, definition: Any) -> None:
    if not isinstance(definition, str):
        raise TypeError(f"schedule entry {name!r}: definition must be JSON text (str), got "
                        f"{type(definition).__name__}; use ScheduleEntry.to_json()")


def check_holder(holder: Any) -> None:
    if not isinstance(holder, str) or not holder:
        raise ValueError(f"lease holder must be a non-empty string, got {holder!r}")


def check_cursor(cursor: Any) -> int:
    if not isinstance(cursor, int) or isinstance(cursor, bool):
        raise ValueError(f"cursor must be an integer from load() or changes(), got {cursor!r}")
    return cursor


def check_runs(runs: Sequence[Any]) -> list[Run]:
    checked = []
    for run in runs:
        name, scheduled_at, task_id = run
        check_name(name)
        if not isinstance(scheduled_at, (int, float)) or isinstance(scheduled_at, bool) or (
                not math.isfinite(scheduled_at)):
            raise ValueError(f"run of {name!r}: scheduled_at must be finite Unix seconds, "
                             f"got {scheduled_at!r}")
        if not isinstance(task_id, str) or not task_id:
            raise ValueError(f"run of {name!r}: task_id must be a non-empty string, "
                             f"got {task_id!r}")
        checked.append(Run(name, float(scheduled_at), task_id))
    return checked
