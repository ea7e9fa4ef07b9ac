"""Events between Celery and corekit on one Redis, in kombu's layout (see
``plugins/redis/kombu_compat.py``): ``celery events --dump`` follows a
corekit worker, and corekit's receiver and ``corekit events --dump`` a Celery
worker, whose prefork pool sends its task events in ``task.multi`` lists."""
from __future__ import annotations

import base64
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from corekit import Corekit
from corekit.events.dispatcher import to_message
from corekit.events.state import State
from helpers import ROOT
from event_log import EventLog
from test_events_celery import CELERY_PROJ, Output, celery_dump_follows

pytest.importorskip("celery", reason="celery is a test dependency (pip install -e '.[test]')")


@pytest.fixture
def env(redis_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """celery_proj.py (Celery) and proj.py (corekit) on the suite's Redis."""
    (tmp_path / "celery_proj.py").write_text(CELERY_PROJ)
    (tmp_path / "proj.py").write_text(
        "from corekit import Corekit\n"
        f"app = Corekit('proj', broker={redis_url!r}, backend={redis_url!r})\n")
    yield {**os.environ, "BROKER": redis_url, "BACKEND": redis_url,
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}


@pytest.fixture
def raw(redis_url: str) -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def drain(pubsub: Any, until: float) -> list[dict[str, Any]]:
    """Every pmessage *pubsub* gets in the next *until* seconds."""
    got, deadline = [], time.monotonic() + until
    while time.monotonic() < deadline:
        item = pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
        if item is not None and item["type"] == "pmessage":
            got.append(item)
    return got


def test_events_go_only_to_kombus_channels_as_kombu_envelopes(redis_url: str, raw: Any
                                                              ) -> None:
    app = Corekit("proj", broker=redis_url)
    listener = raw.pubsub()
    listener.psubscribe("*")
    listener.get_message(timeout=5)  # the confirmation
    event = {"type": "task-succeeded", "hostname": "w@h", "uuid": "u1", "result": "4"}
    app.connection().publish_broadcast("celeryev", [to_message(event)])
    [item] = drain(listener, 0.5)  # one copy: nothing on corekit's own channels
    assert item["channel"] == b"/0.celeryev/task.succeeded"
    envelope = json.loads(item["data"])
    assert json.loads(base64.b64decode(envelope["body"])) == event
    assert envelope["content-type"] == "application/json"
    assert envelope["headers"] == {"hostname": "w@h"}
    assert envelope["properties"]["body_encoding"] == "base64"
    assert envelope["properties"]["delivery_info"] == {
        "exchange": "celeryev", "routing_key": "task.succeeded"}
    listener.close()
    app.close()


def test_a_subscription_hears_events_published_by_kombu(redis_url: str) -> None:
    """What a Celery worker's dispatcher publishes, with the routing key as
    a topic pattern picks it (kombu's glob cannot say ``task.#``)."""
    from celery.events.event import get_exchange
    from kombu import Connection, Producer

    app = Corekit("proj", broker=redis_url)
    transport = app.connection()
    with transport.subscribe_broadcast(["celeryev"], routing_key="task.#") as tasks, \
            transport.subscribe_broadcast(["celeryev"], routing_key="worker.*") as workers, \
            Connection(redis_url) as conn:
        exchange = get_exchange(conn)
        assert exchange.type == "fanout"
        producer = Producer(conn.default_channel, exchange=exchange, serializer="json",
                            auto_declare=False)
        for n, key in enumerate(["task.received", "worker.heartbeat", "task.multi", "task"]):
            producer.publish({"type": key.replace(".", "-"), "n": n}, routing_key=key,
                             exchange=exchange.name, declare=[exchange],
                             headers={"hostname": "celeryw@h"})
        got: list[Any] = []
        deadline = time.monotonic() + 10
        while len(got) < 3 and time.monotonic() < deadline:
            got += tasks.get(1.0)
        assert [(json.loads(m.body)["n"], m.routing_key, m.exchange) for m in got] == [
            (0, "task.received", "celeryev"), (2, "task.multi", "celeryev"),
            (3, "task", "celeryev")]
        assert got[0].headers == {"hostname": "celeryw@h"}
        assert got[0].content_type == "application/json"
        [heartbeat] = workers.get(5.0)
        assert heartbeat.routing_key == "worker.heartbeat"
        assert tasks.get(0.2) == [] and workers.get(0.0) == []
    app.close()


def test_celery_events_dump_follows_a_corekit_worker(redis_url: str, tmp_path: Path,
                                                     env: dict[str, str]) -> None:
    celery_dump_follows(Corekit("proj", broker=redis_url, backend=redis_url), tmp_path, env)


def test_corekit_follows_a_celery_worker(redis_url: str, raw: Any, tmp_path: Path,
                                         env: dict[str, str]) -> None:
    """``corekit events --dump``, and a receiver feeding `State` with only
    ``task.#``, both follow a prefork Celery worker with ``-E``."""
    import celery

    app = Corekit("proj", broker=redis_url)
    state = State()
    listener = raw.pubsub()
    listener.psubscribe("/0.celeryev/task.*")
    listener.get_message(timeout=5)  # the confirmation
    dump = Output([sys.executable, "-m", "corekit", "-A", "proj", "events", "--dump"],
                  tmp_path, env)
    log = EventLog(app, handler=state.event, routing_key="task.#")
    worker = Output([sys.executable, "-m", "celery", "-A", "celery_proj", "worker", "-E",
                     "--pool", "prefork", "-c", "1", "-n", "celeryw@%h", "-l", "info",
                     "--without-mingle", "--without-gossip"], tmp_path, env)
    client = celery.Celery("proj", broker=redis_url, backend=redis_url)
    try:
        dump.until(r"^-> corekit events: dumping events")
        worker.until(r"ready\.")
        dump.until(r"^celeryw@\S+ \[.*\] (started|heartbeat): .*sw_ident=py-celery")
        result = client.send_task("proj.add", (3, 4))
        assert result.get(timeout=30) == 7
        dump.until(rf"^celeryw@\S+ \[.*\] task received: proj\.add\({result.id}\) ")
        dump.until(rf"^celeryw@\S+ \[.*\] task succeeded: proj\.add\({result.id}\) "
                   rf".*result=7")
        log.wait_for(lambda: result.id in state.tasks and state.tasks[result.id].ready)
        task = state.tasks[result.id]
        assert (task.state, task.name, task.result) == ("SUCCESS", "proj.add", "7")
        assert (task.worker or "").startswith("celeryw@")
        assert not log.types(type="worker-heartbeat")  # task.# only
        # the prefork pool's event loop batched them: the receiver unpacked the lists
        assert {item["channel"] for item in drain(listener, 1.0)} == {b"/0.celeryev/task.multi"}
    finally:
        client.close()
        worker.stop()
        log.close()
        dump.stop()
        listener.close()
        app.close()
