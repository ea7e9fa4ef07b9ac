"""The ``rpc://`` result backend (plugins/amqp/rpc.py): results travel back to
the sending client as AMQP messages, on a real RabbitMQ and a real worker."""
from __future__ import annotations

import threading
from typing import Any, Callable, Iterator

import pytest

from corekit import Corekit, states
from corekit.exceptions import EncodeError, ImproperlyConfigured, TimeoutError
from corekit.pluginmanager import default_manager
from corekit.serialization import Codecs
from corekit.testing import start_worker


class CustomError(Exception):
    pass


@pytest.fixture
def rpc_app(amqp_app: Corekit) -> Corekit:
    amqp_app.conf.result_backend = "rpc://"
    return amqp_app


@pytest.fixture
def make_client(amqp_url: str) -> Iterator[Callable[[], Corekit]]:
    """More clients (apps) on the same vhost, each with a reply queue of its own."""
    made: list[Corekit] = []

    def make() -> Corekit:
        app = Corekit("client", broker=amqp_url, backend="rpc://",
                      task_queue_max_priority=9)  # declares queues as amqp_app does
        made.append(app)
        return app

    yield make
    for app in made:
        app.close()


def _codecs() -> Codecs:
    pm = default_manager()
    return Codecs(pm.registry("serializers").values(), pm.registry("compressors").values())


def _rpc(broker_url: str | None, url: str = "rpc://") -> Any:
    return default_manager().get("result_backends", "rpc")(
        url, _codecs(), {"broker_url": broker_url, "result_expires": 60})


def test_result_comes_back_through_the_reply_queue(rpc_app: Corekit) -> None:
    @rpc_app.task
    def add(x: int, y: int) -> int:
        return x + y

    @rpc_app.task(bind=True)
    def reply_queue(self: Any) -> str:
        return str(self.request.reply_to)

    with start_worker(rpc_app):
        result = add.delay(2, 2)
        assert result.get(timeout=10) == 4
        assert result.state == states.SUCCESS and result.successful()
        assert reply_queue.delay().get(timeout=10) == rpc_app.backend.reply_to
        assert rpc_app.AsyncResult(result.id).get(timeout=1) == 4  # a new handle reads it too
        result.forget()  # nothing is stored: a no-op


def test_failure_reraises_the_original_type(rpc_app: Corekit) -> None:
    @rpc_app.task
    def fail() -> None:
        raise CustomError("custom", 42)

    with start_worker(rpc_app):
        result = fail.delay()
        with pytest.raises(CustomError) as info:
            result.get(timeout=10)
        assert info.value.args == ("custom", 42)
        assert result.state == states.FAILURE and "raise CustomError" in (result.traceback or "")


def test_many_results_collected_in_reverse_order(rpc_app: Corekit) -> None:
    @rpc_app.task
    def square(x: int) -> int:
        return x * x

    with start_worker(rpc_app, concurrency=4):
        results = [square.delay(i) for i in range(20)]
        got = [r.get(timeout=10) for r in reversed(results)]
        assert got == [i * i for i in reversed(range(20))]


def test_ignore_result_sends_nothing(rpc_app: Corekit) -> None:
    ran = threading.Event()
    seen_reply_to: list[Any] = []

    @rpc_app.task(bind=True, ignore_result=True)
    def quiet(self: Any) -> int:
        seen_reply_to.append(self.request.reply_to)
        ran.set()
        return 1

    @rpc_app.task
    def loud() -> int:
        return 2

    with start_worker(rpc_app, concurrency=1):
        ignored = quiet.delay()
        assert ran.wait(10)
        # one worker thread, one queue in order: quiet's reply, had there been
        # one, would have come before loud's
        assert loud.delay().get(timeout=10) == 2
        assert rpc_app.backend.get_task_meta(ignored.id)["status"] == states.PENDING
        assert not seen_reply_to[0]  # the message named no reply queue either


def test_a_result_for_another_client_never_arrives(rpc_app: Corekit,
                                                   make_client: Callable[[], Corekit]) -> None:
    @rpc_app.task
    def add(x: int, y: int) -> int:
        return x + y

    other = make_client()
    assert rpc_app.backend.reply_to != other.backend.reply_to  # both queues exist now
    with start_worker(rpc_app):
        theirs = other.send_task(add.name, (1, 2))
        assert theirs.get(timeout=10) == 3
        mine = rpc_app.AsyncResult(theirs.id)
        with pytest.raises(TimeoutError, match=theirs.id):
            mine.get(timeout=0.5)
        assert mine.state == states.PENDING


def test_get_from_four_threads_at_once(rpc_app: Corekit) -> None:
    gate = threading.Event()

    @rpc_app.task
    def held(x: int) -> int:
        gate.wait(10)
        return x * 10

    with start_worker(rpc_app, concurrency=4):
        results = [held.delay(i) for i in range(40)]
        start = threading.Barrier(5)
        got: dict[int, list[int]] = {}
        errors: list[BaseException] = []

        def collect(k: int) -> None:
            try:
                start.wait(10)
                got[k] = [results[i].get(timeout=20) for i in range(k, 40, 4)]
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=collect, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        start.wait(10)  # every thread is about to wait before any task may finish
        gate.set()
        for t in threads:
            t.join(30)
        assert not errors
        assert got == {k: [i * 10 for i in range(k, 40, 4)] for k in range(4)}


def test_intermediate_states_are_kept_and_the_latest_wins(rpc_app: Corekit) -> None:
    backend = rpc_app.backend
    queue = backend.reply_to
    backend.store_result("a", None, states.STARTED, reply_to=queue)
    backend.store_result("b", "b done", states.SUCCESS, reply_to=queue)
    assert backend.wait_for("b", timeout=10)["result"] == "b done"
    assert backend.get_task_meta("a")["status"] == states.STARTED  # came before b's
    with pytest.raises(TimeoutError):
        backend.wait_for("a", timeout=0.2)  # STARTED is not ready
    backend.store_result("a", [1, 2], states.SUCCESS, reply_to=queue)
    meta = backend.wait_for("a", timeout=10)
    assert meta["status"] == states.SUCCESS and meta["result"] == [1, 2]
    assert set(meta) == {"task_id", "status", "result", "traceback", "children", "date_done"}


def test_a_state_without_reply_to_goes_nowhere(rpc_app: Corekit) -> None:
    backend = rpc_app.backend
    backend.reply_to  # listening
    backend.store_result("lost", 1, states.SUCCESS)
    backend.store_result("found", 2, states.SUCCESS, reply_to=backend.reply_to)
    assert backend.wait_for("found", timeout=10)["result"] == 2
    assert backend.get_task_meta("lost")["status"] == states.PENDING


def test_result_expires_is_the_reply_queues_message_ttl(rpc_app: Corekit,
                                                        amqp_url: str) -> None:
    import kombu

    rpc_app.conf.result_expires = 30
    queue = rpc_app.backend.reply_to
    with kombu.Connection(amqp_url) as conn:  # type: ignore[attr-defined,no-untyped-call]
        channel = conn.channel()
        # redeclaring with the same arguments succeeds; different ones would not
        channel.queue_declare(queue, passive=False, durable=False, auto_delete=True,
                              arguments={"x-message-ttl": 30000})
        with pytest.raises(Exception, match="PRECONDITION_FAILED"):
            conn.channel().queue_declare(queue, durable=False, auto_delete=True,
                                         arguments={"x-message-ttl": 1000})


@pytest.mark.parametrize("broker_url, url, problem", [
    ("redis://localhost", "rpc://", "AMQP broker"),
    (None, "rpc://", "broker_url"),
    ("amqp://localhost", "rpc://guest@elsewhere//", "nothing after the scheme"),
])
def test_misconfiguration_is_explained(broker_url: str | None, url: str, problem: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=problem):
        _rpc(broker_url, url)


def test_describe_masks_the_broker_password() -> None:
    backend = _rpc("amqp://user:secret@localhost//")
    assert "secret" not in backend.describe() and "rpc://" in backend.describe()


def test_an_unencodable_result_fails_only_its_task(rpc_app: Corekit) -> None:
    """Each reply is encoded on its own: the task whose result cannot be
    encoded gets FAILURE (EncodeError) and the worker goes on."""
    @rpc_app.task
    def make(bad: bool) -> object:
        return object() if bad else "fine"

    with start_worker(rpc_app, concurrency=2):
        results = [make.delay(i == 1) for i in range(4)]
        with pytest.raises(EncodeError, match="object"):
            results[1].get(timeout=10)
        assert [results[i].get(timeout=10) for i in (0, 2, 3)] == ["fine"] * 3
        assert make.delay(False).get(timeout=10) == "fine"
