"""Bounded event fields: `truncate` keeps a value's head and tail and says
how big it was, and the cluster `State` bounds every field of every event
it keeps (a Celery worker sends tracebacks and arguments whole)."""
from __future__ import annotations

import json

from corekit.events.state import State
from corekit.events.truncate import DEFAULT_MAX_FIELD_SIZE, truncate


def test_truncate_keeps_head_and_tail_and_says_how_big_it_was() -> None:
    assert truncate("short", 100) == "short"
    text = "Traceback (most recent call last):\n" + "x" * 50_000 + "\nValueError: the end"
    cut = truncate(text, 1000)
    assert len(cut.encode()) <= 1000
    assert cut.startswith("Traceback (most recent call last):\n")
    assert cut.endswith("\nValueError: the end")
    assert f"…(truncated, {len(text)} bytes)…" in cut
    wide = "é" * 10_000  # 2 bytes each: cut on characters, counted in bytes
    cut = truncate(wide, 1001)
    assert len(cut.encode()) <= 1001 and "…(truncated, 20000 bytes)…" in cut
    assert set(cut.replace("…(truncated, 20000 bytes)…", "")) == {"é"}
    assert truncate(text, 0) == text  # 0: no limit
    assert DEFAULT_MAX_FIELD_SIZE == 4096


def test_the_state_bounds_every_field_of_an_untruncated_event() -> None:
    state = State(max_field_size=1000)
    big = "x" * 3_000_000
    state.event({"type": "task-received", "uuid": "t1", "name": "n" * 5000, "args": big,
                 "kwargs": big, "hostname": "w@h", "timestamp": 1.0})
    state.event({"type": "task-failed", "uuid": "t1", "exception": big,
                 "traceback": "Traceback\n" + big + "\nValueError: end", "hostname": "w@h",
                 "timestamp": 2.0, "extra": [big, big], "nested": {"k": big}})
    task = state.tasks["t1"]
    for field in ("name", "args", "kwargs", "exception", "traceback"):
        value = getattr(task, field)
        assert len(value.encode()) <= 1000 and "…(truncated, " in value, field
    assert task.traceback.endswith("ValueError: end")
    for entry in task.events:
        assert len(json.dumps(entry)) < 6000, entry.keys()  # four fields of 1000 bytes
    assert task.state == "FAILURE" and task.name.startswith("nnn")
    # a Celery task-failed event of a normal size is kept whole
    default = State()
    default.event({"type": "task-failed", "uuid": "t2", "traceback": "t" * 4000,
                   "timestamp": 1.0})
    assert default.tasks["t2"].traceback == "t" * 4000
