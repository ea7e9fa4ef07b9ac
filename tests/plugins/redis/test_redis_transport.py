"""Redis transport and backend under failure: racing first calls and lost
replies.

Threads that touch a Redis transport or backend first at the same moment
share one client: a second client would be collected, and redis-py closes a
collected client's pool under the thread still using it ("Bad file
descriptor" in a worker's result writer)."""
from __future__ import annotations

import threading
from typing import Any

import pytest

from corekit.pluginmanager import default_manager
from corekit.serialization import Codecs


def first_touch_from_threads(obj: Any, n: int = 8) -> set[int]:
    barrier = threading.Barrier(n)
    seen: list[int] = []

    def touch() -> None:
        barrier.wait()
        seen.append(id(obj.client))

    threads = [threading.Thread(target=touch) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return set(seen)


@pytest.mark.parametrize("kind", ["transports", "result_backends"])
def test_one_client_however_many_threads_race(kind: str, redis_url: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import corekit.plugins.redis.backend as backend_module
    import corekit.plugins.redis.transport as transport_module

    module = transport_module if kind == "transports" else backend_module
    real_connect = module.connect

    def slow_connect(url: str) -> Any:  # a connect that takes a while, as over a network
        threading.Event().wait(0.02)
        return real_connect(url)

    monkeypatch.setattr(module, "connect", slow_connect)
    pm = default_manager()
    factory = pm.get(kind, "redis")
    for _ in range(5):
        if kind == "transports":
            obj = factory(redis_url, {})
        else:
            obj = factory(redis_url, Codecs(pm.registry("serializers").values(), []), {})
        assert len(first_touch_from_threads(obj)) == 1
        obj.close()


def test_a_fetch_whose_reply_is_lost_is_reclaimed(redis_url: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from corekit.messages import Message

    transport = default_manager().get("transports", "redis")(redis_url, {})
    transport.publish([Message(body=b"x%d" % i, headers={"n": i}, properties={},
                               content_type="application/json", queue="q")
                       for i in range(3)])
    real_run = transport._run

    def reply_lost(name: str, args: Any) -> Any:
        result = real_run(name, args)  # the claim happens on the server...
        if name == "fetch":
            raise ConnectionError("connection reset before the reply")  # ...unseen here
        return result

    monkeypatch.setattr(transport, "_run", reply_lost)
    with pytest.raises(ConnectionError):
        transport.fetch(["q"], 10, 0.0)
    monkeypatch.setattr(transport, "_run", real_run)
    got = transport.fetch(["q"], 10, 0.0)
    assert sorted(m.headers["n"] for m in got) == [0, 1, 2]
    transport.ack(got)
    assert transport.fetch(["q"], 10, 0.0) == [] and transport.queue_size("q") == 0
    transport.close()


def test_waits_share_one_pubsub_connection_and_ignore_stale_channels(redis_url: str) -> None:
    """get() keeps its thread's pub/sub connection between waits; a message
    still arriving for an earlier task's channel is not taken for the task
    waited on now."""
    from corekit import states
    from corekit.plugins.redis.backend import KEY_PREFIX

    pm = default_manager()
    backend = pm.get("result_backends", "redis")(
        redis_url, Codecs(pm.registry("serializers").values(), []), {})
    try:
        threading.Timer(0.05, backend.store_result, ("a", 1, states.SUCCESS)).start()
        assert backend.wait_for("a", timeout=10)["result"] == 1
        first = backend._pubsub()
        backend.client.publish(KEY_PREFIX + "a", backend.encode_meta(
            backend.make_meta("a", "stale", states.SUCCESS)))
        threading.Timer(0.05, backend.store_result, ("c", 3, states.SUCCESS)).start()
        assert backend.wait_for("c", timeout=10) == backend.get_task_meta("c")
        assert backend._pubsub() is first  # the same connection, not one per wait
    finally:
        backend.close()
