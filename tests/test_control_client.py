"""The remote-control client (``app.control``, ``app.control.inspect()``) and
its command line (``corekit inspect``, ``control``, ``status``), against live
workers on SQLite, Redis and RabbitMQ: replies collected until the timeout or
the limit, by destination or pattern, each client's replies kept apart."""
from __future__ import annotations

import json
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from corekit import Corekit
from corekit.pidbox import PIDBOX
from corekit.testing import start_worker
from corekit.worker import Worker
from helpers import run_cli

ALPHA, BETA = "alpha@box", "beta@box"
PONG = {"ok": "pong"}


@pytest.fixture(params=["sqlite_app", "redis_app", "amqp_app"])
def app(request: pytest.FixtureRequest) -> Corekit:
    app: Corekit = request.getfixturevalue(request.param)

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    return app


@contextmanager
def workers(app: Corekit, *names: str) -> Iterator[list[Worker]]:
    with ExitStack() as stack:
        yield [stack.enter_context(start_worker(app, hostname=name)) for name in names]


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


def merged(replies: list[dict[str, Any]] | None) -> dict[str, Any]:
    assert replies is not None
    out: dict[str, Any] = {}
    for reply in replies:
        assert len(reply) == 1 and not set(reply) & set(out), replies
        out.update(reply)
    return out


def test_every_worker_answers_until_the_timeout_or_the_limit(app: Corekit) -> None:
    with workers(app, ALPHA, BETA):
        replies, took = timed(lambda: app.control.ping(timeout=1.0))
        assert merged(replies) == {ALPHA: PONG, BETA: PONG}
        assert took >= 0.9  # no limit: it listened for the whole timeout
        assert app.control.inspect(timeout=1.0).ping() == {ALPHA: PONG, BETA: PONG}
        # with a limit it stops at the last reply wanted, long before the timeout
        replies, took = timed(lambda: app.control.broadcast("ping", reply=True, timeout=20,
                                                            limit=2))
        assert merged(replies) == {ALPHA: PONG, BETA: PONG} and took < 10
        replies, took = timed(lambda: app.control.ping(timeout=20, limit=1))
        assert len(merged(replies)) == 1 and took < 10


def test_destination_and_pattern_choose_who_answers(app: Corekit) -> None:
    with workers(app, ALPHA, BETA):
        # a destination sets the limit: it returns once those named replied
        replies, took = timed(lambda: app.control.inspect(destination=[BETA], timeout=20).ping())
        assert replies == {BETA: PONG} and took < 10
        assert app.control.inspect(destination=ALPHA, timeout=20).ping() == {ALPHA: PONG}
        assert merged(app.control.ping([ALPHA, BETA], timeout=20)) == {ALPHA: PONG, BETA: PONG}
        # the workers themselves pick a pattern's requests (no client-side filter here)
        assert merged(app.control.broadcast("ping", reply=True, timeout=1.0,
                                            pattern="al*")) == {ALPHA: PONG}
        assert merged(app.control.broadcast("ping", reply=True, timeout=1.0, pattern="^b",
                                            matcher="pcre")) == {BETA: PONG}
        assert app.control.inspect(pattern="*@box", timeout=1.0).ping() == {
            ALPHA: PONG, BETA: PONG}


def test_nobody_answering_is_none_after_the_timeout(app: Corekit) -> None:
    with workers(app, ALPHA):
        reply, took = timed(lambda: app.control.inspect(destination=["ghost@box"],
                                                        timeout=0.5).ping())
        assert reply is None and 0.45 <= took < 5
        assert app.control.ping(["ghost@box"], timeout=0.3) == []
        assert app.control.inspect(pattern="ghost*", timeout=0.3).stats() is None


def test_concurrent_requests_get_only_their_own_replies(app: Corekit) -> None:
    """Threads share the client's node id (the replies' routing key): the
    ticket keeps each request's replies apart."""
    failures: list[str] = []

    def ask(kind: str) -> None:
        for _ in range(3):
            inspect = app.control.inspect(destination=[ALPHA], timeout=20)
            got = inspect.ping() if kind == "ping" else inspect.clock()
            ok = (got == {ALPHA: PONG} if kind == "ping"
                  else got is not None and set(got[ALPHA]) == {"clock"})
            if not ok:
                failures.append(f"{kind}: {got!r}")

    with workers(app, ALPHA):
        threads = [threading.Thread(target=ask, args=(kind,))
                   for kind in ("ping", "clock", "ping", "clock")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert failures == []


def test_control_commands_reach_the_workers_with_their_arguments(app: Corekit) -> None:
    with workers(app, ALPHA, BETA):
        replies = app.control.rate_limit("proj.add", "10/m", destination=[ALPHA], reply=True,
                                         timeout=20)
        assert replies is not None and [list(r) for r in replies] == [[ALPHA]]
        assert "ok" in replies[0][ALPHA]
        registered = app.control.inspect(timeout=20, destination=[ALPHA]).registered(
            "rate_limit")
        assert registered == {ALPHA: ["proj.add [rate_limit=10/m]"]}
        answered = merged(app.control.broadcast("clock", reply=True, timeout=20, limit=2))
        assert set(answered) == {ALPHA, BETA}


# -- arguments are checked before anything is sent ------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda c: c.rate_limit("proj.add", "10/x"), "not N/s"),
    (lambda c: c.rate_limit("", "10/s"), "task_name"),
    (lambda c: c.time_limit("proj.add", soft=10, hard=5), "above the hard"),
    (lambda c: c.time_limit("proj.add", soft=-1), "soft time limit"),
    (lambda c: c.pool_grow(0), "n must be > 0"),
    (lambda c: c.pool_shrink("2"), "whole number"),
    (lambda c: c.autoscale(2, 4), "above max"),
    (lambda c: c.add_consumer("q", exchange_type="fan"), "exchange type"),
    (lambda c: c.cancel_consumer(""), "queue"),
    (lambda c: c.revoke("id", signal="SIGNOPE"), "unknown signal"),
    (lambda c: c.revoke([]), "task ids"),
    (lambda c: c.terminate("id", signal="NOPE"), "unknown signal"),
    (lambda c: c.revoke_by_stamped_headers({}), "headers"),
    (lambda c: c.ping(destination=[1]), "worker names"),
    (lambda c: c.ping(timeout=0), "timeout"),
    (lambda c: c.broadcast("ping", reply=True, limit=0), "limit"),
    (lambda c: c.broadcast("ping", pattern="a*", matcher="regex"), "unknown matcher"),
    (lambda c: c.broadcast(""), "command"),
    (lambda c: c.inspect(pattern="a*", matcher="nope"), "unknown matcher"),
])
def test_bad_arguments_fail_early_and_send_nothing(memory_app: Corekit,
                                                   call: Callable[[Any], Any],
                                                   message: str) -> None:
    with memory_app.connection().subscribe_broadcast([PIDBOX]) as requests:
        with pytest.raises(ValueError, match=message):
            call(memory_app.control)
        assert requests.get(0.05) == []


def test_requests_have_celerys_shape(memory_app: Corekit) -> None:
    control = memory_app.control
    with memory_app.connection().subscribe_broadcast([PIDBOX]) as requests:
        before = time.time()
        assert control.ping(["w@h"], timeout=0.2) == []
        control.rate_limit("proj.add", "5/s")
        asked, told = requests.get(1.0)
    body = json.loads(asked.body)
    assert asked.content_type == "application/json"
    assert body == {"method": "ping", "arguments": {}, "destination": ["w@h"], "pattern": None,
                    "matcher": None, "ticket": body["ticket"],
                    "reply_to": {"exchange": "reply.celery.pidbox",
                                 "routing_key": control.oid}}
    assert before + 0.2 <= asked.headers["expires"] <= time.time() + 0.2
    assert told.headers["expires"] == 0 and told.headers["clock"] > asked.headers["clock"] > 0
    assert json.loads(told.body) == {
        "method": "rate_limit", "arguments": {"task_name": "proj.add", "rate_limit": "5/s"},
        "destination": None, "pattern": None, "matcher": None}
    assert control.oid == memory_app.control.oid != Corekit("other").control.oid


# -- the command line ------------------------------------------------------------------
PROJ = '''
from corekit import Corekit
app = Corekit("proj", broker={url!r}, backend={url!r})
'''


@pytest.fixture
def live(sqlite_app: Corekit, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``corekit -A proj ARGS`` against two live workers on SQLite."""
    (tmp_path / "proj.py").write_text(PROJ.format(url=sqlite_app.conf.broker))

    @sqlite_app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    with workers(sqlite_app, ALPHA, BETA):
        yield lambda *args: run_cli("-A", "proj", *args, cwd=tmp_path)


def test_the_command_line(live: Callable[..., Any]) -> None:
    out = live("inspect", "ping", "-d", ALPHA, "-t", "20")
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"->  {ALPHA}: OK\n        pong\n\n1 node online.\n"

    out = live("inspect", "-j", "ping")
    assert out.returncode == 0 and json.loads(out.stdout) == {ALPHA: PONG, BETA: PONG}

    out = live("status", "--destination", f"{ALPHA},{BETA}", "--timeout", "20")
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.splitlines()) == sorted(
        [f"->  {ALPHA}: OK", f"->  {BETA}: OK", "", "2 nodes online."])

    out = live("inspect", "registered", "-d", BETA, "--json")
    assert json.loads(out.stdout) == {BETA: ["proj.add"]}

    out = live("control", "rate_limit", "proj.add", "200/m", "-d", BETA, "--json")
    assert out.returncode == 0 and list(json.loads(out.stdout)[0]) == [BETA]
    out = live("inspect", "registered", "rate_limit", "-d", BETA, "--timeout", "20")
    assert f"->  {BETA}: OK\n    * proj.add [rate_limit=200/m]\n" in out.stdout

    out = live("control", "-d", ALPHA, "revoke", "a-task-id")
    assert out.returncode == 0 and out.stdout.startswith(f"->  {ALPHA}: OK\n"), out
    out = live("inspect", "revoked", "-d", ALPHA, "-j")
    assert "a-task-id" in json.loads(out.stdout)[ALPHA]


def test_the_command_line_when_nobody_answers_or_the_call_is_wrong(
        live: Callable[..., Any]) -> None:
    out = live("inspect", "ping", "-d", "ghost@box", "-t", "0.3")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.strip() == "Error: No nodes replied within time constraint."
    out = live("status", "-d", "ghost@box", "-t", "0.3", "-j")
    assert out.returncode == 1 and "No nodes replied" in out.stderr
    for args in (["inspect", "nosuch"], ["control", "rate_limit", "proj.add", "10/x"],
                 ["control", "pool_grow", "zero"], ["control", "autoscale", "4"],
                 ["control", "terminate", "SIGNOPE", "id"], ["inspect", "query_task"]):
        out = live(*args)
        assert out.returncode == 2 and "usage: corekit" in out.stderr, (args, out)
    assert "not N/s, N/m or N/h" in live("control", "rate_limit", "x", "1/y").stderr
