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
