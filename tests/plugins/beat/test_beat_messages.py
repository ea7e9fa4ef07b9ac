"""A run's message copied from its entry's template is the message
``prepare_task`` would build for it (issue 14)."""
from __future__ import annotations

from pathlib import Path

from corekit import Corekit
from corekit.plugins.beat.messages import RunMessages
from corekit.schedules.entry import ScheduleEntry


def make_app(tmp_path: Path) -> Corekit:
    url = f"sqlite://{tmp_path / 'broker.db'}"
    return Corekit("proj", broker=url, backend=url, task_routes={"proj.routed": {"queue": "r"}})


def fields(message: object) -> dict[str, object]:
    return {name: getattr(message, name) for name in message.__slots__}  # type: ignore[attr-defined]


def test_a_copied_message_is_what_prepare_task_builds(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    messages = RunMessages(app)
    for entry in (ScheduleEntry("a", "proj.add", 1.0, (2, 2), {"z": [1, "x"]}),
                  ScheduleEntry("b", "proj.routed", 1.0, options={"priority": 7,
                                                                 "headers": {"h": "v"}}),
                  ScheduleEntry("c", "proj.add", 1.0, options={"queue": "hipri",
                                                               "serializer": "msgpack",
                                                               "compression": "zlib"})):
        for task_id in ("id-1", "id-2"):
            got = messages.build(entry, task_id)
            want = app.prepare_task(entry.task, entry.args, entry.kwargs, task_id=task_id,
                                    **entry.options)
            assert fields(got) == fields(want), entry.name
    app.close()


def test_time_relative_options_and_changed_entries_are_built_afresh(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    messages = RunMessages(app)
    expiring = ScheduleEntry("e", "proj.add", 1.0, options={"expires": 60})
    first = messages.build(expiring, "id-1")
    assert first.headers["expires"] is not None
    assert "e" not in messages._templates  # never a template: its expiry moves with time

    entry = ScheduleEntry("a", "proj.add", 1.0, (1,))
    assert messages.build(entry, "id-1").queue == "celery"
    changed = entry.replace(options={"queue": "other"})
    assert messages.build(changed, "id-2").queue == "other"  # the new definition's
    app.close()
