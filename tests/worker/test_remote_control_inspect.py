"""Remote control, the worker's side: every inspect command answered by live
workers on SQLite, Redis and RabbitMQ through ``app.control``, in Celery's
reply shapes; errors are replies, and a request reaches the workers it
names.  test_remote_control_commands.py: the control commands.

Waits poll a condition with a deadline; a short timed wait appears only
to observe that something does *not* happen.  ETA tasks wait on the broker
with every built-in transport, so ``scheduled`` is seen with tasks waiting
for their rate limit, the one thing a worker keeps in its timer.
"""
from __future__ import annotations

import json
import os
import threading
import time
import uuid
from typing import Any

import pytest

from corekit import Corekit, TaskRevokedError
from corekit.pidbox import PIDBOX, REPLY_PIDBOX, request_message
from corekit.testing import start_worker
from remote_control_helpers import (TIMEOUT, answer, ask, by_id, inspect, opened_at_exit,
                                    wait_until)

pytestmark = pytest.mark.timeout(120)


# -- inspect ------------------------------------------------------------------------------
def test_inspect_shows_what_a_worker_runs_holds_and_knows(app: Corekit) -> None:
    gate = threading.Event()

    @app.task(name="rc.block")
    def block() -> str:
        gate.wait(30)
        return "done"

    @app.task(name="rc.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="rc.limited", rate_limit="1/h")
    def limited(i: int) -> int:
        return i

    app.conf.my_api_token = "hunter2"
    app.conf.my_service_url = "redis://user:hunter2@cache.example:6379/0"
    with start_worker(app, pool="threads", concurrency=1) as worker, \
            opened_at_exit(gate):
        me = worker.hostname
        assert add.delay(1, 2).get(timeout=TIMEOUT) == 3
        running = block.delay()
        wait_until(lambda: running.id in worker.consumer.running)
        held = add.delay(2, 3)  # behind the blocker
        first, second = limited.delay(1), limited.delay(2)  # the second waits an hour
        wait_until(lambda: len(worker.consumer.waiting) == 1)
        ins = inspect(app, worker)

        assert ins.ping() == {me: {"ok": "pong"}}

        [active] = ins.active()[me]
        assert active["id"] == running.id and active["name"] == active["type"] == "rc.block"
        assert active["hostname"] == me and active["worker_pid"] == os.getpid()
        assert active["acknowledged"] is True and active["time_start"] <= time.time()
        assert active["args"] == [] and active["kwargs"] == {}
        assert active["delivery_info"]["routing_key"] is not None

        reserved = ins.reserved()[me]
        assert {r["id"] for r in reserved} == {held.id, first.id, second.id}
        assert all(r["time_start"] is None and r["acknowledged"] is False for r in reserved)

        [waiting] = ins.scheduled()[me]
        assert waiting["request"]["id"] == second.id and waiting["request"]["args"] == [2]
        assert waiting["eta"] > time.strftime("%Y-%m-%dT%H", time.gmtime(time.time() + 1800))
        assert "priority" in waiting

        assert ins.query_task(running.id, held.id, second.id, "unknown") == {me: {
            running.id: ["active", ins.active()[me][0]],
            held.id: ["reserved", by_id(reserved, held.id)],
            second.id: ["scheduled", waiting["request"]]}}

        stats = ins.stats()[me]
        assert stats["total"] == {"rc.add": 1, "rc.block": 1}
        assert stats["pool"]["max-concurrency"] == 1 and stats["pool"]["implementation"] == \
            "threads"
        assert stats["pool"]["processes"] == [os.getpid()]
        assert stats["prefetch_count"] == 4 and stats["pid"] == os.getpid()
        assert stats["broker"]["transport"] == app.connection().scheme
        assert "password" not in json.dumps(stats["broker"])
        assert isinstance(stats["uptime"], int) and stats["rusage"]["maxrss"] > 0
        assert int(stats["clock"]) > 0

        registered = ins.registered()[me]
        assert {"rc.add", "rc.block", "rc.limited [rate_limit=1/h]"} <= set(registered)
        assert not any(name.startswith("celery.") for name in registered)

        [queue] = ins.active_queues()[me]
        assert queue["name"] == "celery" and queue["routing_key"] == "celery"
        assert queue["exchange"]["name"] == "celery" and queue["exchange"]["type"] == "direct"

        conf = ins.conf()[me]
        assert conf["my_api_token"] == "********"
        assert conf["my_service_url"] == "redis://user:**@cache.example:6379/0"
        assert "task_serializer" not in conf
        assert ins.conf(with_defaults=True)[me]["task_serializer"] == "json"
        assert "hunter2" not in json.dumps(ins.conf(with_defaults=True)[me])

        report = ins.report()[me]["ok"]
        assert "corekit:" in report and "hunter2" not in report
        assert ins.clock()[me]["clock"] > 0

        # revoke answers as Celery does, and the id shows in ``revoked``
        assert answer(app.control.revoke(held.id, destination=[me], reply=True,
                                         timeout=TIMEOUT), worker) == {
            "ok": f"tasks {held.id} flagged as revoked"}
        assert ins.revoked()[me] == [held.id]
        gate.set()
        assert running.get(timeout=TIMEOUT) == "done"
        with pytest.raises(TaskRevokedError):
            held.get(timeout=TIMEOUT)
        assert first.get(timeout=TIMEOUT) == 1


def test_errors_are_replies_and_the_worker_goes_on(app: Corekit) -> None:
    @app.task(name="rc.echo")
    def echo(x: Any) -> Any:
        return x

    with start_worker(app, pool="threads", concurrency=1) as worker:
        assert ask(app, worker, "no_such_thing") == {"error": "No such command: no_such_thing"}
        broken = ask(app, worker, "rate_limit", bogus=1)  # a handler that raises
        assert broken["error"].startswith("TypeError(")
        assert ask(app, worker, "rate_limit", task_name="rc.nope", rate_limit="1/s") == {
            "error": "unknown task"}
        assert ask(app, worker, "rate_limit", task_name="rc.echo",
                   rate_limit="fast")["error"].startswith("Invalid rate limit string")
        assert ask(app, worker, "ping") == {"ok": "pong"}
        assert echo.delay("still here").get(timeout=TIMEOUT) == "still here"


def test_requests_reach_the_workers_they_name(app: Corekit) -> None:
    tag = uuid.uuid4().hex[:6]
    with start_worker(app, hostname=f"alpha-{tag}@test") as alpha, \
            start_worker(app, hostname=f"beta-{tag}@test") as beta:
        both = {alpha.hostname, beta.hostname}
        everyone = app.control.ping(timeout=TIMEOUT, limit=2)
        assert everyone and {name for reply in everyone for name in reply} == both
        assert app.control.ping([alpha.hostname], timeout=TIMEOUT) == [
            {alpha.hostname: {"ok": "pong"}}]
        by_glob = app.control.inspect(pattern=f"alpha-{tag}@*", limit=1,
                                      timeout=TIMEOUT).ping()
        assert by_glob == {alpha.hostname: {"ok": "pong"}}
        by_regex = app.control.inspect(pattern=f"^beta-{tag}", matcher="pcre", limit=1,
                                       timeout=TIMEOUT).ping()
        assert by_regex == {beta.hostname: {"ok": "pong"}}

        # an expired request is not run, nor answered
        transport = app.connection()
        oid = uuid.uuid4().hex
        with transport.subscribe_broadcast([REPLY_PIDBOX], routing_key=oid) as replies:
            stale = request_message("ping", {}, ticket="t-stale", reply_to=oid,
                                    expires=time.time() - 1)
            fresh = request_message("ping", {}, ticket="t-fresh", reply_to=oid,
                                    expires=time.time() + TIMEOUT)
            transport.publish_broadcast(PIDBOX, [stale, fresh])
            tickets: list[str] = []
            deadline = time.monotonic() + TIMEOUT
            while tickets.count("t-fresh") < 2 and time.monotonic() < deadline:
                tickets += [m.headers["ticket"] for m in replies.get(0.2)]
            # one reply per worker; a stale one would have come before it
            assert tickets == ["t-fresh", "t-fresh"]
        transport.close()
