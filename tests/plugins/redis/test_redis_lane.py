"""The Redis plugin's hot-path connections (`Lane`) against the session's
redis-server: scripts survive a SCRIPT FLUSH, a connection the server
killed is replaced, a failed command keeps its connection, and two threads
never share one."""
from __future__ import annotations

import threading
import time

import pytest
import redis

from corekit.plugins.redis.client import Lane, LuaScript, connect


@pytest.fixture
def lane(redis_url: str):
    lane = Lane(connect(redis_url))
    yield lane
    lane.close()
    lane.client.close()


def test_a_script_is_loaded_again_after_the_server_forgot_it(lane: Lane) -> None:
    echo = LuaScript(lane, "return ARGV[1]")
    assert echo(args=["a"]) == b"a"  # first use loads it
    lane.client.script_flush()
    assert echo(args=["b"]) == b"b"


def test_a_connection_the_server_closed_is_replaced(lane: Lane) -> None:
    killed = lane.call("CLIENT", "ID")
    (conn,) = lane._free
    lane.client.client_kill_filter(_id=killed)
    assert lane.call("SET", "k", "v") == b"OK"
    assert lane.client.get("k") == b"v"
    assert lane.call("CLIENT", "ID") != killed
    assert conn not in lane._all


def test_a_failed_command_raises_and_keeps_its_connection(lane: Lane) -> None:
    lane.call("SET", "s", "text")
    (conn,) = lane._free
    with pytest.raises(redis.ResponseError, match="not an integer"):
        lane.call("INCR", "s")
    assert lane._free == [conn]


def test_calls_at_the_same_time_get_connections_of_their_own(lane: Lane) -> None:
    got: list[object] = []

    def blocked() -> None:  # BLPOP holds its connection until a value comes
        got.append(lane.call("BLPOP", "nothing", 10))

    threads = [threading.Thread(target=blocked) for _ in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while lane.client.info("clients")["blocked_clients"] < 3:
        assert time.monotonic() < deadline, "three BLPOPs never blocked side by side"
        time.sleep(0.01)
    lane.client.rpush("nothing", 1, 2, 3)
    for t in threads:
        t.join(10)
    assert sorted(v for _, v in got) == [b"1", b"2", b"3"]
    assert len(lane._all) == 3 and len(lane._free) == 3
    lane.close()
    assert lane._all == [] and lane._free == []
