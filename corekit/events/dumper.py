"""``corekit events --dump``: one line per event, as Celery's dumper prints them::

    w1@host [2026-11-23 10:00:00.123456] task succeeded: proj.add(1c9e...) result=4 runtime=0.001
"""
from __future__ import annotations

import sys
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Mapping, TextIO

#: Fields every event has, left off the line.
QUIET_FIELDS = frozenset({"clock", "pid", "utcoffset", "local_received"})
HUMAN_TYPES = {"worker-online": "started", "worker-offline": "shutdown",
               "worker-heartbeat": "heartbeat"}
#: Task names remembered, to name a task in its later events.
MAX_NAMES = 4096


def humanize_type(event_type: str) -> str:
    return HUMAN_TYPES.get(event_type, event_type.replace("-", " "))


def fields_text(fields: Mapping[str, Any]) -> str:
    return " ".join(f"{key}={fields[key]}" for key in sorted(fields))


class Dumper:
    """Writes each event it is given (`on_event`) as a line on *out*;
    timestamps are in UTC."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.names: OrderedDict[str, str] = OrderedDict()

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)  # flushed: the output is often piped

    def format(self, event: Mapping[str, Any]) -> str:
        fields = {k: v for k, v in event.items() if k not in QUIET_FIELDS}
        event_type = str(fields.pop("type", "?"))
        when = datetime.fromtimestamp(float(fields.pop("timestamp", 0) or 0), timezone.utc)
        head = f"{fields.pop('hostname', '?')} [{when:%Y-%m-%d %H:%M:%S.%f}] " \
               f"{humanize_type(event_type)}"
        if event_type.startswith("task-"):
            head += f": {self.task_label(fields)}"
        elif fields:
            head += ":"
        rest = fields_text(fields)
        return f"{head} {rest}" if rest else head

    def task_label(self, fields: dict[str, Any]) -> str:
        """``name(uuid)``, the name from this event or an earlier one."""
        uuid = str(fields.pop("uuid", "?"))
        name = fields.pop("name", None)
        if name:
            self.names[uuid] = str(name)
            if len(self.names) > MAX_NAMES:
                self.names.popitem(last=False)
        return f"{self.names.get(uuid, '')}({uuid})"

    def on_event(self, event: Mapping[str, Any]) -> None:
        self.say(self.format(event))
