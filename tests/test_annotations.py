"""``task_annotations``: task attributes set from the configuration, with
Celery's semantics (``celery/app/annotations.py``): a dict by task name or
``"*"``, objects with ``annotate(task)``, a string naming such a class, a
list of them (the first match wins; a task's own match is applied before
the first ``"*"``), applied when the app finalizes and to tasks
registered after."""
from __future__ import annotations

import sys
import threading
import time
import types
from typing import Any

import pytest

from corekit import Corekit
from corekit.exceptions import ImproperlyConfigured
from corekit.testing import start_worker


def most_in_any_second(starts: list[float]) -> int:
    starts = sorted(starts)
    return max(sum(1 for t in starts[i:] if t < s + 1.0) for i, s in enumerate(starts))


def test_a_rate_limit_from_annotations_is_honoured_by_a_worker(sqlite_app: Corekit) -> None:
    app = sqlite_app
    app.conf.task_annotations = {"tasks.add": {"rate_limit": "10/s"}}
    starts: list[float] = []
    lock = threading.Lock()

    @app.task(name="tasks.add")
    def add(x: int, y: int) -> int:
        with lock:
            starts.append(time.monotonic())
        return x + y

    @app.task(name="tasks.free")
    def free(x: int) -> int:
        return x

    results = [add.delay(i, i) for i in range(25)]
    with start_worker(app, pool="threads", concurrency=4):
        assert [r.get(timeout=30) for r in results] == [2 * i for i in range(25)]
    assert add.rate_limit == "10/s" and free.rate_limit is None
    assert most_in_any_second(starts) <= 12  # 10 a second, a token of slack at each end


def test_star_applies_to_every_task(memory_app: Corekit) -> None:
    memory_app.conf.task_annotations = {"*": {"max_retries": 7, "acks_late": True}}

    @memory_app.task(name="a")
    def a() -> None: ...

    @memory_app.task(name="b", max_retries=1)
    def b() -> None: ...

    memory_app.finalize()
    assert (a.max_retries, b.max_retries, a.acks_late, b.acks_late) == (7, 7, True, True)


def test_an_annotate_object_and_the_order_of_a_list(memory_app: Corekit) -> None:
    seen: list[str] = []

    class OnlyTasks:
        def annotate(self, task: Any) -> dict[str, Any] | None:
            seen.append(task.name)
            if task.name.startswith("tasks."):
                return {"rate_limit": "5/m", "max_retries": 2}
            return None

    memory_app.conf.task_annotations = [
        {"tasks.first": {"max_retries": 9}},   # first match for tasks.first: the other is not read
        OnlyTasks(),
        {"tasks.second": {"max_retries": 99}, "*": {"priority": 3}},
        {"*": {"priority": 4}},               # a later "*" loses to the first one
    ]

    @memory_app.task(name="tasks.first")
    def first() -> None: ...

    @memory_app.task(name="tasks.second")
    def second() -> None: ...

    @memory_app.task(name="other")
    def other() -> None: ...

    memory_app.finalize()
    assert (first.max_retries, first.rate_limit) == (9, None)
    assert (second.max_retries, second.rate_limit) == (2, "5/m")
    assert other.max_retries == 3  # Task's default: nothing matched it by name
    assert {t.priority for t in (first, second, other)} == {3}
    assert "tasks.second" in seen and "tasks.first" not in seen


def test_star_is_applied_after_a_task_s_own_entry_as_celery_does(memory_app: Corekit) -> None:
    memory_app.conf.task_annotations = {"tasks.add": {"max_retries": 1, "queue": "own"},
                                        "*": {"max_retries": 5}}

    @memory_app.task(name="tasks.add")
    def add() -> None: ...

    memory_app.finalize()
    assert (add.max_retries, add.queue) == (5, "own")


def test_a_task_registered_after_finalize_is_annotated(memory_app: Corekit) -> None:
    memory_app.conf.task_annotations = {"late.task": {"rate_limit": "1/s"}}
    memory_app.finalize()
    assert memory_app.tasks["celery.map"].rate_limit is None

    @memory_app.task(name="late.task")
    def late() -> None: ...

    assert late.rate_limit == "1/s"
    assert memory_app.tasks["late.task"].rate_limit == "1/s"


def test_a_class_named_by_a_string(memory_app: Corekit,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("annotations_for_test")

    class Slow:
        def annotate(self, task: Any) -> dict[str, Any]:
            return {"rate_limit": "3/h"}

    module.Slow = Slow  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "annotations_for_test", module)
    memory_app.conf.task_annotations = "annotations_for_test.Slow"

    @memory_app.task(name="x")
    def x() -> None: ...

    memory_app.finalize()
    assert x.rate_limit == "3/h"


def test_the_client_sends_with_annotated_options(memory_app: Corekit) -> None:
    """apply_async finalizes the app first, so an annotated queue is used
    by the very first call."""
    memory_app.conf.task_annotations = {"tasks.routed": {"queue": "elsewhere"}}

    @memory_app.task(name="tasks.routed")
    def routed() -> str:
        return "ok"

    routed.delay()
    with start_worker(memory_app, queues=["elsewhere"]):
        assert routed.delay().get(timeout=10) == "ok"
    assert memory_app.producer.queue_size("celery") == 0


def test_method_annotations(memory_app: Corekit) -> None:
    """on_failure given as a function becomes the task's method, as in
    Celery; "@name" wraps the method it names."""
    failures: list[tuple[str, str]] = []
    successes: list[Any] = []

    def on_failure(self: Any, exc: BaseException, task_id: str, args: Any, kwargs: Any,
                   einfo: Any) -> None:
        failures.append((self.name, repr(exc)))

    def around_success(orig: Any) -> Any:
        def on_success(self: Any, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
            successes.append(retval)
            return orig(self, retval, task_id, args, kwargs)
        return on_success

    memory_app.conf.task_annotations = {"*": {"on_failure": on_failure,
                                              "@on_success": around_success}}

    @memory_app.task(name="boom")
    def boom() -> None:
        raise KeyError("k")

    @memory_app.task(name="fine")
    def fine(x: int) -> int:
        return x

    with start_worker(memory_app):
        with pytest.raises(KeyError):
            boom.delay().get(timeout=10)
        assert fine.delay(5).get(timeout=10) == 5
    assert failures == [("boom", "KeyError('k')")]
    assert successes == [5]
    memory_app.finalize()  # again: nothing wrapped twice
    assert fine.apply((6,)).get() == 6 and successes == [5, 6]


def test_a_bad_annotation_fails_at_finalize(memory_app: Corekit) -> None:
    memory_app.conf.task_annotations = {"*": {"rate_limit": "fast"}}
    with pytest.raises(ImproperlyConfigured, match="task_annotations.*rate_limit"):
        memory_app.finalize()
    other = Corekit("bad", broker="memory://bad-anno", backend="memory://bad-anno",
                    task_annotations=["no_such_module_here.Thing"])
    with pytest.raises(ImproperlyConfigured, match="no_such_module_here"):
        other.finalize()
    third = Corekit("bad", broker="memory://bad-anno", backend="memory://bad-anno",
                    task_annotations=[42])
    with pytest.raises(ImproperlyConfigured, match="task_annotations"):
        third.finalize()


def _record_failure(self: Any, exc: BaseException, task_id: str, args: Any, kwargs: Any,
                    einfo: Any) -> None:
    with open(args[0], "a") as out:
        out.write(f"{self.name} {exc!r} {'KeyError' in einfo}\n")


def test_method_annotations_run_in_a_prefork_child(sqlite_app: Corekit, tmp_path: Any) -> None:
    sqlite_app.conf.task_annotations = {"boom": {"on_failure": _record_failure}}

    @sqlite_app.task(name="boom")
    def boom(path: str) -> None:
        raise KeyError("k")

    record = tmp_path / "failures.txt"
    with start_worker(sqlite_app, pool="prefork", concurrency=1):
        with pytest.raises(KeyError):
            boom.delay(str(record)).get(timeout=30)
    assert record.read_text() == "boom KeyError('k') True\n"
