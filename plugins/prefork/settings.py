"""The prefork pool's settings: only this pool reads them, so only its
plugin declares them (``corekit worker``'s prefork flags set them)."""
from __future__ import annotations

from corekit.settings import Setting

PREFORK_SETTINGS: tuple[Setting, ...] = (
    Setting("worker_max_tasks_per_child", None, int,
            "Replace a child process after it ran this many tasks; None: never."),
    Setting("worker_max_memory_per_child", None, int,
            "Replace a child process once its resident memory passes this many KiB; None: never."),
    Setting("worker_autoscale", None, (tuple, list),
            "(max, min) child processes: grow to max under load, shrink to min when idle."),
)
