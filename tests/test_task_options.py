"""Task.typing (arguments checked against the function at call time) and
Task.throws (expected exceptions logged at INFO, without a traceback), as
Celery's do."""
from __future__ import annotations

import logging
from typing import Any

import pytest

from corekit import Corekit, states
from corekit.testing import start_worker


@pytest.fixture
def tasks(memory_app: Corekit) -> Any:
    @memory_app.task(name="opts.add")
    def add(x: int, y: int = 0) -> int:
        return x + y

    @memory_app.task(name="opts.greet", bind=True)
    def greet(self: Any, name: str, *, loud: bool = False) -> str:
        return name.upper() if loud else name

    @memory_app.task(name="opts.loose", typing=False)
    def loose(x: int) -> int:
        return x

    @memory_app.task(name="opts.anything")
    def anything(*args: Any, **kwargs: Any) -> int:
        return len(args) + len(kwargs)

    return add, greet, loose, anything


def queued(app: Corekit) -> int:
    return app.connection().queue_size("celery")


@pytest.mark.parametrize("call, text", [
    (lambda add, greet: add.delay(1, 2, 3), "takes from 1 to 2 positional arguments but 3 "
                                            "were given"),
    (lambda add, greet: add.delay(), "missing 1 required positional argument: 'x'"),
    (lambda add, greet: add.delay(1, z=2), "unexpected keyword argument 'z'"),
    (lambda add, greet: add.apply_async((1,), {"x": 1}), "multiple values for argument 'x'"),
    (lambda add, greet: greet.delay(), "missing 1 required positional argument: 'name'"),
    (lambda add, greet: greet.delay("bob", True), "takes 1 positional argument but 2 were given"),
    (lambda add, greet: add.s(1, 2, 3).delay(), "but 3 were given"),
    (lambda add, greet: add.s(1).apply_async((2, 3)), "but 3 were given"),
], ids=["extra-arg", "missing-arg", "unknown-kwarg", "twice", "bound-missing",
        "keyword-only", "signature", "signature-partial"])
def test_a_call_that_cannot_fit_is_refused_where_it_is_made(memory_app: Corekit, tasks: Any,
                                                             call: Any, text: str) -> None:
    add, greet, _, _ = tasks
    with pytest.raises(TypeError, match=text) as info:
        call(add, greet)
    assert "opts." in str(info.value) and "typing=False" in str(info.value)
    assert "check()" not in str(info.value)  # the stub that checks is not named
    assert queued(memory_app) == 0


def test_calls_that_fit_are_sent(memory_app: Corekit, tasks: Any) -> None:
    add, greet, _, anything = tasks
    add.delay(1)
    add.delay(1, y=2)
    greet.delay("bob", loud=True)  # bind=True: self is not an argument of the call
    anything.delay(1, 2, z=3)
    add.s(1).delay(2)
    assert queued(memory_app) == 5


def test_typing_false_sends_whatever_it_is_given(memory_app: Corekit, tasks: Any) -> None:
    _, _, loose, _ = tasks
    loose.delay(1, 2, 3)
    assert queued(memory_app) == 1


def test_an_eager_call_is_checked_before_it_runs(memory_app: Corekit, tasks: Any) -> None:
    add = tasks[0]
    memory_app.conf.task_always_eager = True
    with pytest.raises(TypeError, match="but 3 were given"):
        add.delay(1, 2, 3)
    assert add.delay(1, 2).get() == 3


def test_send_task_by_name_is_not_checked(memory_app: Corekit, tasks: Any) -> None:
    memory_app.send_task("opts.add", (1, 2, 3))  # as in Celery: the name may be another app's
    assert queued(memory_app) == 1


def test_throws_must_be_exception_classes(memory_app: Corekit) -> None:
    with pytest.raises(TypeError, match="throws of opts.bad must be exception classes"):
        @memory_app.task(name="opts.bad", throws=("ValueError",))
        def bad() -> None:
            pass
    task = memory_app.task(name="opts.listed", throws=[KeyError])(lambda: None)
    assert task.throws == (KeyError,)


def test_expected_exceptions_are_logged_at_info_without_traceback(
        memory_app: Corekit, caplog: pytest.LogCaptureFixture) -> None:
    @memory_app.task(name="opts.fragile", throws=(KeyError, ValueError))
    def fragile(kind: str) -> None:
        raise {"key": KeyError, "value": ValueError, "type": TypeError}[kind]("no " + kind)

    caplog.set_level(logging.INFO, logger="corekit.worker")
    with start_worker(memory_app, pool="solo"):
        results = {kind: fragile.delay(kind) for kind in ("key", "value", "type")}
        for result in results.values():
            with pytest.raises(Exception):
                result.get(timeout=10)
    assert all(r.state == states.FAILURE for r in results.values())
    assert results["value"].traceback  # the result keeps it: only the log leaves it out
    lines = {r.getMessage().split(":")[0]: r for r in caplog.records
             if "opts.fragile" in r.getMessage()}
    expected = [r for r in caplog.records if "raised expected" in r.getMessage()]
    assert len(expected) == 2 and all(r.levelno == logging.INFO for r in expected)
    assert all("Traceback" not in r.getMessage() and r.exc_info is None for r in expected)
    assert any("ValueError('no value')" in r.getMessage() for r in expected)
    (unexpected,) = [r for r in caplog.records if "raised unexpected" in r.getMessage()]
    assert unexpected.levelno == logging.ERROR and "TypeError" in unexpected.getMessage()
    assert "Traceback" in unexpected.getMessage()
    assert lines


def test_the_check_takes_defaults_annotations_and_every_parameter_kind(memory_app: Corekit) -> None:
    marker = object()

    @memory_app.task(name="opts.kinds")
    def kinds(a: "list[int]", /, b: int = marker, *rest: int,  # type: ignore[assignment]
              c: "dict[str, int]" = {"x": 1}, **extra: Any) -> None:  # noqa: B006
        return None

    kinds.delay(1)
    kinds.delay(1, 2, 3, 4, c={}, d=5)
    for call in (lambda: kinds.delay(), lambda: kinds.delay(a=1)):  # a is positional-only
        with pytest.raises(TypeError, match="missing 1 required positional argument: 'a'"):
            call()
    assert queued(memory_app) == 2
