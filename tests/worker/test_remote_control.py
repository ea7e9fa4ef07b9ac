"""Remote control, the worker's side: every inspect and control command
answered by live workers on SQLite, Redis and RabbitMQ through
``app.control``, in Celery's reply shapes, with its effect proven (tasks
run slower after rate_limit, more at once after pool_grow, a new queue is
consumed after add_consumer...).

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
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from corekit import Corekit, TaskRevokedError
from corekit.exceptions import ImproperlyConfigured
from corekit.hookspecs import hookimpl
from corekit.pidbox import PIDBOX, REPLY_PIDBOX, request_message
from corekit.pluginmanager import PluginInfo, PluginManager
from corekit.testing import start_worker
from corekit.worker import Worker
from corekit.worker.commands import ControlContext, commands_for, inspect_command, ok
from corekit.worker.commands.control import signal_number

pytestmark = pytest.mark.timeout(120)

TIMEOUT = 10.0  # replies normally come in milliseconds; this is the give-up bound


@pytest.fixture(params=["sqlite", "redis", "amqp"])
def app(request: pytest.FixtureRequest) -> Corekit:
    """The same test on each real broker."""
    return request.getfixturevalue(f"{request.param}_app")


def wait_until(predicate: Callable[[], Any], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def holds_for(predicate: Callable[[], Any], seconds: float) -> bool:
    """Whether *predicate* stays true for *seconds* (to see that nothing happens)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(0.02)
    return True


@contextmanager
def opened_at_exit(gate: threading.Event) -> Iterator[None]:
    """Let blocked tasks go when the block ends, even on a failure, so the
    worker can stop warmly (enter it after the worker)."""
    try:
        yield
    finally:
        gate.set()


def ask(app: Corekit, worker: Worker, command: str, **arguments: Any) -> Any:
    """*worker*'s reply to *command*, through ``app.control.broadcast``."""
    replies = app.control.broadcast(command, arguments, destination=[worker.hostname],
                                    reply=True, timeout=TIMEOUT)
    assert replies, f"{worker.hostname} did not answer {command}"
    [reply] = replies
    return reply[worker.hostname]


def inspect(app: Corekit, worker: Worker) -> Any:
    return app.control.inspect(destination=[worker.hostname], timeout=TIMEOUT)


def answer(replies: Any, worker: Worker) -> Any:
    """The one reply of *worker* in a control method's reply list."""
    assert replies and len(replies) == 1, replies
    return replies[0][worker.hostname]


def by_id(requests: list[dict[str, Any]], task_id: str) -> dict[str, Any]:
    [found] = [r for r in requests if r["id"] == task_id]
    return found


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


# -- limits -------------------------------------------------------------------------------
def test_rate_limit_slows_a_task_type_and_can_be_lifted(app: Corekit) -> None:
    @app.task(name="rc.stamp")
    def stamp() -> float:
        return time.time()

    def span(n: int) -> float:
        results = [stamp.delay() for _ in range(n)]
        times = sorted(r.get(timeout=TIMEOUT) for r in results)
        return times[-1] - times[0]

    with start_worker(app, pool="threads", concurrency=4) as worker:
        assert answer(app.control.rate_limit("rc.stamp", "4/s", destination=[worker.hostname],
                                             reply=True, timeout=TIMEOUT), worker) == {
            "ok": "new rate limit set successfully"}
        assert span(5) >= 0.9  # a token every 0.25 s: the fifth starts 1 s after the first
        assert answer(app.control.rate_limit("rc.stamp", None, destination=[worker.hostname],
                                             reply=True, timeout=TIMEOUT), worker) == {
            "ok": "rate limit disabled successfully"}
        assert span(5) < 0.9


def test_time_limit_is_refused_where_the_pool_cannot_enforce_it(app: Corekit) -> None:
    @app.task(name="rc.nap")
    def nap() -> None:
        time.sleep(0.01)

    with start_worker(app, pool="threads", concurrency=1) as worker:
        refused = ask(app, worker, "time_limit", task_name="rc.nap", soft=1.0, hard=2.0)
        assert "the threads pool cannot enforce" in refused["error"]
        assert app.tasks["rc.nap"].time_limit is None
        assert ask(app, worker, "time_limit", task_name="rc.nap") == {
            "ok": "time limits set successfully"}
        assert ask(app, worker, "time_limit", task_name="rc.none", hard=1) == {
            "error": "unknown task"}


def test_time_limit_is_enforced_on_prefork(sqlite_app: Corekit) -> None:
    from corekit.exceptions import TimeLimitExceeded

    @sqlite_app.task(name="rc.slow")
    def slow() -> str:
        time.sleep(30)
        return "never"

    with start_worker(sqlite_app, pool="prefork", concurrency=1) as worker:
        assert answer(sqlite_app.control.time_limit(
            "rc.slow", hard=0.5, destination=[worker.hostname], reply=True,
            timeout=TIMEOUT), worker) == {"ok": "time limits set successfully"}
        with pytest.raises(TimeLimitExceeded):
            slow.delay().get(timeout=TIMEOUT)


# -- the pool -----------------------------------------------------------------------------
def test_pool_grow_and_shrink_change_how_many_run_at_once(app: Corekit) -> None:
    gate = threading.Event()
    lock = threading.Lock()
    running: set[int] = set()

    @app.task(name="rc.hold")
    def hold(i: int) -> int:
        with lock:
            running.add(i)
        gate.wait(30)
        with lock:
            running.discard(i)
        return i

    with start_worker(app, pool="threads", concurrency=1) as worker, \
            opened_at_exit(gate):
        me = [worker.hostname]
        results = [hold.delay(i) for i in range(3)]
        wait_until(lambda: len(running) == 1)
        assert answer(app.control.pool_grow(2, destination=me, reply=True, timeout=TIMEOUT),
                      worker) == {"ok": "pool will grow"}
        wait_until(lambda: len(running) == 3)
        stats = inspect(app, worker).stats()[worker.hostname]
        assert stats["pool"]["max-concurrency"] == 3 and stats["prefetch_count"] == 12
        assert answer(app.control.pool_shrink(2, destination=me, reply=True, timeout=TIMEOUT),
                      worker) == {"ok": "pool will shrink"}
        gate.set()
        assert [r.get(timeout=TIMEOUT) for r in results] == [0, 1, 2]
        gate.clear()
        results = [hold.delay(i) for i in range(3, 6)]
        wait_until(lambda: len(running) == 1)
        assert holds_for(lambda: len(running) <= 1, 0.3)
        assert ask(app, worker, "pool_shrink", n=1) == {
            "error": "concurrency must be at least 1, not 0"}
        gate.set()
        assert [r.get(timeout=TIMEOUT) for r in results] == [3, 4, 5]


def test_the_solo_pool_cannot_change_size_nor_autoscale(sqlite_app: Corekit) -> None:
    with start_worker(sqlite_app, pool="solo") as worker:
        assert ask(sqlite_app, worker, "pool_grow", n=1) == {
            "error": "the solo pool cannot change its size"}
        assert "does not autoscale" in ask(sqlite_app, worker, "autoscale", max=2,
                                           min=1)["error"]


def test_prefork_grows_shrinks_and_autoscales(sqlite_app: Corekit) -> None:
    with start_worker(sqlite_app, pool="prefork", concurrency=1) as worker:
        ins = inspect(sqlite_app, worker)

        def processes() -> int:
            return len(ins.stats()[worker.hostname]["pool"]["processes"])

        assert ask(sqlite_app, worker, "pool_grow", n=2) == {"ok": "pool will grow"}
        wait_until(lambda: processes() == 3)
        assert worker.consumer.dispatcher.capacity == 3
        assert ask(sqlite_app, worker, "pool_shrink", n=2) == {"ok": "pool will shrink"}
        wait_until(lambda: processes() == 1)
        assert ask(sqlite_app, worker, "autoscale", max=3, min=1) == {
            "ok": "autoscale now max=3 min=1"}
        assert ins.stats()[worker.hostname]["pool"]["autoscale"] == [3, 1]
        assert ask(sqlite_app, worker, "pool_grow", n=1) == {
            "error": "pool_grow is not supported with autoscale. Adjust autoscale range "
                     "instead."}


# -- queues -------------------------------------------------------------------------------
def test_add_consumer_and_cancel_consumer(app: Corekit) -> None:
    @app.task(name="rc.where")
    def where(tag: str) -> str:
        return tag

    with start_worker(app, pool="threads", concurrency=2) as worker:
        me = [worker.hostname]
        assert answer(app.control.add_consumer("extra", destination=me, reply=True,
                                               timeout=TIMEOUT), worker) == {
            "ok": "add consumer extra"}
        assert where.apply_async(("extra",), queue="extra").get(timeout=TIMEOUT) == "extra"
        # declared with the exchange and routing key given, then routed through them
        assert answer(app.control.add_consumer(
            "images", exchange="media", exchange_type="topic", routing_key="image.#",
            destination=me, reply=True, timeout=TIMEOUT), worker) == {
                "ok": "add consumer images"}
        assert where.apply_async(("png",), exchange="media",
                                 routing_key="image.png").get(timeout=TIMEOUT) == "png"
        names = [q["name"] for q in inspect(app, worker).active_queues()[worker.hostname]]
        assert names == ["celery", "extra", "images"]

        assert answer(app.control.cancel_consumer("extra", destination=me, reply=True,
                                                  timeout=TIMEOUT), worker) == {
            "ok": "no longer consuming from extra"}
        # once a task fetched after the cancel ran, every fetch leaves "extra" alone
        assert where.delay("first").get(timeout=TIMEOUT) == "first"
        stranded = where.apply_async(("stranded",), queue="extra")
        assert where.delay("second").get(timeout=TIMEOUT) == "second"
        assert stranded.state == "PENDING"
        assert worker.consumer.transport.queue_size("extra") == 1

        for queue in ("images", "celery"):
            ask(app, worker, "cancel_consumer", queue=queue)
        assert worker.consumer.queues == ["celery"]
        assert ask(app, worker, "cancel_consumer", queue="celery") == {
            "error": "cannot stop consuming 'celery': it is the only queue this worker "
                     "consumes"}


# -- events -------------------------------------------------------------------------------
def test_events_commands_switch_task_events_and_send_a_heartbeat(app: Corekit) -> None:
    @app.task(name="rc.evented")
    def evented() -> str:
        return "ok"

    transport = app.connection()
    with start_worker(app, pool="threads", concurrency=1, heartbeat_interval=60) as worker, \
            transport.subscribe_broadcast(["celeryev"]) as events:
        me = [worker.hostname]

        def next_event(kind: str) -> dict[str, Any]:
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                for message in events.get(0.2):
                    event = json.loads(message.body)
                    if event["type"] == kind and event["hostname"] == worker.hostname:
                        return event
            raise AssertionError(f"no {kind} event")

        assert answer(app.control.enable_events(me, reply=True, timeout=TIMEOUT), worker) == {
            "ok": "task events enabled"}
        assert ask(app, worker, "enable_events") == {"ok": "task events already enabled"}
        result = evented.delay()
        assert next_event("task-succeeded")["uuid"] == result.id
        assert answer(app.control.disable_events(me, reply=True, timeout=TIMEOUT),
                      worker) == {"ok": "task events disabled"}
        assert answer(app.control.heartbeat(me, reply=True, timeout=TIMEOUT), worker) is None
        assert next_event("worker-heartbeat")["sw_ident"] == "corekit"
    transport.close()


# -- the worker ---------------------------------------------------------------------------
def test_shutdown_replies_then_stops_the_worker_warmly(app: Corekit) -> None:
    gate = threading.Event()

    @app.task(name="rc.finish")
    def finish() -> str:
        gate.wait(30)
        return "finished"

    with start_worker(app, pool="threads", concurrency=1) as worker, \
            opened_at_exit(gate):
        result = finish.delay()
        wait_until(lambda: result.id in worker.consumer.running)
        assert answer(app.control.shutdown([worker.hostname], reply=True, timeout=TIMEOUT),
                      worker) == {"ok": "shutting down"}
        wait_until(worker.consumer.stopping.is_set)  # right after the reply went out
        gate.set()
        assert result.get(timeout=TIMEOUT) == "finished"  # warm: the running task finished
        wait_until(lambda: worker.blueprint.state == "stopped")
        assert not app.control.ping([worker.hostname], timeout=0.5)


def test_terminate_and_stamped_header_replies(sqlite_app: Corekit, tmp_path: Path) -> None:
    started = tmp_path / "started"

    @sqlite_app.task(name="rc.forever")
    def forever() -> None:
        started.write_text("yes")
        time.sleep(60)

    with start_worker(sqlite_app, pool="prefork", concurrency=1) as worker:
        me = [worker.hostname]
        assert answer(sqlite_app.control.terminate("nope", destination=me, reply=True,
                                                   timeout=TIMEOUT), worker) == {
            "ok": "terminate: tasks unknown"}
        result = forever.apply_async(headers={"batch": "b1"})
        wait_until(started.exists)
        wait_until(lambda: result.id in worker.consumer.running)
        reply = answer(sqlite_app.control.revoke_by_stamped_headers(
            {"batch": "b1"}, destination=me, terminate=True, signal="SIGKILL", reply=True,
            timeout=TIMEOUT), worker)
        assert reply == {"ok": f"headers {{'batch': 'b1'}} revoked: {result.id} terminated"}
        with pytest.raises(TaskRevokedError, match="terminated"):
            result.get(timeout=TIMEOUT)
        assert answer(sqlite_app.control.revoke_by_stamped_headers(
            {"batch": "b2"}, destination=me, reply=True, timeout=TIMEOUT), worker) == {
                "ok": "headers {'batch': 'b2'} flagged as revoked, but not terminated"}


# -- commands from plugins ----------------------------------------------------------------
@inspect_command(signature="[name]", args=[("name", str)])
def greet(ctx: ControlContext, name: str = "world", **kwargs: Any) -> dict[str, str]:
    """Say hello from a worker."""
    return ok(f"hello {name} from {ctx.hostname} ({len(ctx.consumer.queues)} queue)")


def queue_names(ctx: ControlContext) -> list[str]:
    """The queues this worker consumes (an undecorated command)."""
    return list(ctx.consumer.queues)


class GreeterPlugin:
    """A plugin as a third-party package would write it."""

    @staticmethod
    @hookimpl
    def corekit_register_control_commands() -> dict[str, Any]:
        return {"greet": greet, "queue_names": queue_names}


class ClashingPlugin:
    @staticmethod
    @hookimpl
    def corekit_register_control_commands() -> dict[str, Any]:
        return {"ping": greet}


def app_with(plugin: object, url: str, backend: str | None = None) -> Corekit:
    manager = PluginManager()
    manager.register(plugin, PluginInfo(type(plugin).__name__, __name__, "tests", "0"))
    return Corekit("tests", broker=url, backend=backend or url, broker_heartbeat=0.2,
                   broker_lease_timeout=2.0, plugin_manager=manager)


@pytest.fixture(params=["sqlite", "redis", "amqp"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'broker.sqlite3'}"
    return str(request.getfixturevalue(f"{request.param}_url"))


def test_a_plugin_command_answers_broadcast(broker_url: str, tmp_path: Path) -> None:
    app = app_with(GreeterPlugin(), broker_url,
                   backend=f"sqlite://{tmp_path / 'results.sqlite3'}")
    try:
        assert app.plugins.plugins["GreeterPlugin"].provides == {
            "control_commands": ["greet", "queue_names"]}
        with start_worker(app) as worker:
            me = worker.hostname
            replies = app.control.broadcast("greet", {"name": "operator"}, destination=[me],
                                            reply=True, timeout=TIMEOUT)
            assert replies == [{me: {"ok": f"hello operator from {me} (1 queue)"}}]
            assert app.control.broadcast("queue_names", destination=[me], reply=True,
                                         timeout=TIMEOUT) == [{me: ["celery"]}]
            assert app.control.inspect(destination=[me], timeout=TIMEOUT)._request(
                "greet") == {me: {"ok": f"hello world from {me} (1 queue)"}}
    finally:
        app.close()


def test_plugin_commands_are_described_for_command_lines(tmp_path: Path) -> None:
    app = app_with(GreeterPlugin(), f"sqlite://{tmp_path / 'db.sqlite3'}")
    commands = commands_for(app)
    assert commands["greet"].type == "inspect" and commands["greet"].signature == "[name]"
    assert commands["greet"].help == "Say hello from a worker."
    assert commands["queue_names"].type == "control"
    assert commands["queue_names"].help == "The queues this worker consumes (an undecorated " \
                                           "command)."
    assert commands["rate_limit"].args == (("task_name", str), ("rate_limit", str))
    assert commands["dump_conf"] is commands["conf"]
    app.close()


def test_a_plugin_may_not_replace_a_builtin_command(tmp_path: Path) -> None:
    app = app_with(ClashingPlugin(), f"sqlite://{tmp_path / 'db.sqlite3'}")
    with pytest.raises(ImproperlyConfigured, match="'ping' has the name of a built-in"):
        app.Worker(pool="solo").setup()
    app.close()


@pytest.mark.parametrize("name, number", [("SIGKILL", 9), ("kill", 9), (15, 15), (None, 15),
                                          ("SIGNOPE", 15)])
def test_signal_names_in_revokes(name: Any, number: int) -> None:
    assert signal_number(name) == number
