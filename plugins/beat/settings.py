"""The beat's settings (declared through ``corekit_register_settings``)."""
from __future__ import annotations

from corekit.settings import Setting

SETTINGS = (
    Setting("beat_lease_timeout", 4.0, float,
            "Seconds the beat leader's lease lasts unrenewed: how soon another takes over."),
    Setting("beat_missed_runs", "once", str,
            "Runs missed while no beat ran: once (the latest fires), all, or none."),
    Setting("beat_late_window", 15.0, float,
            "Seconds late a run may be and still fire; older ones follow beat_missed_runs."),
    Setting("beat_max_loop_interval", 300.0, float,
            "Longest the beat sleeps between looks at its schedule."),
    Setting("worker_beat", False, bool, "Run a beat inside the worker (-B)."),
)
