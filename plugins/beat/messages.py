"""`RunMessages`: the task message of each beat run, from one template per entry.

Every run of an entry sends the same task with the same arguments and
options; only the task id differs.  So the message is built once
(`Corekit.prepare_task`: routing, serializing, compressing) and each run
gets a copy with its own id, about a tenth of the cost.  An entry whose
options are relative to the send time (``expires``, ``countdown``, ``eta``)
is built afresh for every run.

A run sent in two steps (claimed in the store, then published to a broker
that is not the store) is marked with `RUN_HEADER`: ``[entry name,
scheduled_at, send id]``.  The worker asks the store to `take_runs` before
running it (`corekit.plugins.beat.run_gate`), so when a new leader sends
again a batch a dead one had already published, only one send's copies run.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from corekit.messages import Message

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.schedules.entry import ScheduleEntry
    from corekit.schedules.store import Run

#: send options that depend on when the message is sent
TIME_OPTIONS = frozenset({"expires", "countdown", "eta"})
#: the header naming a two-step send's run: ``[name, scheduled_at, send id]``
RUN_HEADER = "corekit_beat_run"
#: templates kept (the entries firing most often keep theirs; 100,000 entries
#: would otherwise hold 100,000 messages)
MAX_TEMPLATES = 20_000


class RunMessages:
    """Builds the message of one run of one entry."""

    def __init__(self, app: Corekit) -> None:
        self.app = app
        self._templates: dict[str, tuple[ScheduleEntry, Message]] = {}

    def build(self, entry: ScheduleEntry, task_id: str) -> Message:
        if TIME_OPTIONS & entry.options.keys():
            return self.app.prepare_task(entry.task, entry.args, entry.kwargs,
                                         task_id=task_id, **entry.options)
        cached = self._templates.get(entry.name)
        if cached is None or cached[0] is not entry:  # new, or the entry changed
            if len(self._templates) >= MAX_TEMPLATES:
                self._templates.pop(next(iter(self._templates)))
            template = self.app.prepare_task(entry.task, entry.args, entry.kwargs,
                                             **entry.options)
            cached = self._templates[entry.name] = (entry, template)
        t = cached[1]
        return Message(body=t.body, headers={**t.headers, "id": task_id, "root_id": task_id},
                       properties={**t.properties, "correlation_id": task_id},
                       content_type=t.content_type, content_encoding=t.content_encoding,
                       queue=t.queue, exchange=t.exchange, routing_key=t.routing_key,
                       eta=t.eta, priority=t.priority)


def mark_runs(runs: Sequence[Run], messages: Sequence[Message], send_id: str) -> None:
    """Put `RUN_HEADER` on each run's message (each has a headers dict of its own)."""
    for run, message in zip(runs, messages):
        message.headers[RUN_HEADER] = [run.name, run.scheduled_at, send_id]
