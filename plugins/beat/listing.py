"""What ``corekit beat list`` prints: a table, or JSON lines."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterator, Sequence


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, ValueError, OSError):  # a store row another program wrote
        return f"? ({ts!r})"


def as_dict(row: Any) -> dict[str, Any]:
    """`PeriodicTask.as_dict` (the web monitor's API shows the same fields)."""
    return row.as_dict()  # type: ignore[no-any-return]


def render(rows: Sequence[Any], lease: tuple[str, float] | None,
           as_json: bool = False) -> Iterator[str]:
    if as_json:
        for row in rows:
            yield json.dumps(as_dict(row))
        return
    leader = f"{lease[0]} (lease {lease[1]:.1f} s left)" if lease else "none"
    yield f"leader: {leader}; {len(rows)} periodic task(s)"
    if not rows:
        return
    table = [("NAME", "TASK", "SCHEDULE", "ON", "NEXT RUN (UTC)", "LAST RUN (UTC)", "RUNS")]
    for row in rows:
        on = "yes" if row.entry is not None and row.entry.enabled else "no"
        task = row.entry.task if row.entry is not None else "-"
        table.append((row.name, task, row.schedule_text, on, _when(row.next_run_at),
                      _when(row.last_run_at), str(row.total_run_count)))
    widths = [min(40, max(len(r[i]) for r in table)) for i in range(len(table[0]))]
    for r in table:
        yield "  ".join(cell[:40].ljust(w) for cell, w in zip(r, widths)).rstrip()
