"""Bad input is logged, dead-lettered, replayable, and never stops the worker."""
from __future__ import annotations

import logging

import pytest

from corekit import Corekit
from corekit.messages import build_message, task_body, task_headers
from corekit.testing import start_worker


def raw(app: Corekit, name: str, body: bytes, content_type: str = "application/json",
        **header_changes: object) -> None:
    headers = task_headers(name, f"id-{name}-{content_type}", [], {})
    headers.update(header_changes)
    app.producer.publish([build_message(headers, body, content_type, "utf-8", None,
                                        queue="celery")])


@pytest.fixture
def echo(any_app: Corekit):  # type: ignore[no-untyped-def]
    @any_app.task(name="echo")
    def echo(x: object) -> object:
        return x
    return echo


def test_bad_messages_go_to_the_dead_letter_queue(any_app: Corekit, echo, caplog) -> None:  # type: ignore[no-untyped-def]
    json = any_app.codecs.serializer("json")
    raw(any_app, "echo", b"{not json")                                    # undecodable
    raw(any_app, "no.such.task", json.dumps(task_body([1], {})))          # unknown task
    raw(any_app, "echo", json.dumps(task_body([1], {})),
        content_type="application/x-evil")                               # forged type
    raw(any_app, "echo", json.dumps({"args": 1}))                         # not protocol v2
    raw(any_app, "echo", json.dumps(task_body([1], {})), eta="yesterday")  # bad header
    raw(any_app, "echo", json.dumps(task_body([1], {})), compression="application/zstd")
    caplog.set_level(logging.ERROR, logger="corekit.worker")
    with start_worker(any_app):
        assert echo.delay("still working").get(timeout=10) == "still working"
    reasons = sorted(d.reason for d in any_app.producer.dead_letters())
    assert len(reasons) == 6, reasons
    text = "\n".join(reasons)
    for expected in ("cannot decode application/json", "unknown task 'no.such.task'",
                     "application/x-evil", "malformed body", "eta", "decompress"):
        assert expected in text
    assert sum("dead-letter queue" in r.message for r in caplog.records) == 6


def test_replay_puts_them_back(any_app: Corekit, echo) -> None:  # type: ignore[no-untyped-def]
    json = any_app.codecs.serializer("json")
    raw(any_app, "late.registered", json.dumps(task_body(["hi"], {})))
    with start_worker(any_app):
        echo.delay(1).get(timeout=10)
    [letter] = any_app.producer.dead_letters()

    @any_app.task(name="late.registered")
    def late(x: str) -> str:
        return x * 2

    assert any_app.producer.replay_dead_letters([letter.id]) == 1
    assert any_app.producer.dead_letters() == []
    with start_worker(any_app):
        assert any_app.AsyncResult(letter.message.headers["id"]).get(timeout=10) == "hihi"


def test_a_failing_dead_letter_write_strands_no_good_message(
        memory_app: Corekit, monkeypatch: pytest.MonkeyPatch) -> None:
    @memory_app.task(name="echo")
    def echo(x: object) -> object:
        return x

    json = memory_app.codecs.serializer("json")
    raw(memory_app, "no.such.task", json.dumps(task_body([1], {})))
    result = echo.delay("fine")  # fetched in the same batch as the bad one
    cls = type(memory_app.producer)
    real = cls.dead_letter
    calls: list[str] = []

    def broken(self, message, reason):  # type: ignore[no-untyped-def]
        calls.append(reason)
        if len(calls) == 1:
            raise ConnectionError("broker went away while dead-lettering")
        return real(self, message, reason)

    monkeypatch.setattr(cls, "dead_letter", broken)
    with start_worker(memory_app):
        assert result.get(timeout=10) == "fine"
    assert calls and "unknown task" in calls[0]
