"""The prefork pool's own ``corekit worker`` options.  Each sets the prefork
setting of the same meaning; the pool reads its settings from ``app.conf``,
so nothing between the command line and the pool names them."""
from __future__ import annotations

import argparse

from corekit.cli.options import CommandOption, positive_int


def autoscale_range(text: str) -> tuple[int, int]:
    """``MAX,MIN`` (``MIN`` defaults to 0) as ``(max, min)``."""
    parts = text.split(",")
    try:
        high, low = (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MAX,MIN, e.g. 10,3, not {text!r}") from None
    if len(parts) > 2 or high < 1 or not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"expected MAX,MIN with MAX >= MIN >= 0 and MAX >= 1, "
                                         f"not {text!r}")
    return high, low


WORKER_OPTIONS = (
    CommandOption(("--max-tasks-per-child",), "worker_max_tasks_per_child",
                  "prefork: replace a child process after N tasks",
                  {"type": positive_int, "metavar": "N"}, pool="prefork"),
    CommandOption(("--max-memory-per-child",), "worker_max_memory_per_child",
                  "prefork: replace a child process once its RSS passes KIB kibibytes",
                  {"type": positive_int, "metavar": "KIB"}, pool="prefork"),
    CommandOption(("--autoscale",), "worker_autoscale",
                  "prefork: grow to MAX child processes under load, shrink to MIN",
                  {"type": autoscale_range, "metavar": "MAX,MIN"}, pool="prefork"),
)
