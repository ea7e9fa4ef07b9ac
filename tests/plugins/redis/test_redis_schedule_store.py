"""The Redis schedule store beyond the contract suite
(tests/contract/test_schedule_store_contract.py): ``fire`` in one
transaction with the Redis transport on the same server and database, the
fallback otherwise, keys written wrong by another program, a server restart,
reopening, the prefix, and pruning of tombstones and run records."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis

from corekit.messages import Message
from corekit.pluginmanager import default_manager
from corekit.plugins.redis.schedule_store import RedisScheduleStore
from corekit.plugins.redis.transport import RedisTransport
from corekit.schedules.entry import entry_from_config
from corekit.schedules.store import Changes, Run
from servers import RedisServer, free_port, require_binary

P = "corekit:beat:"
DAY = 86400


def definition(every: float = 1.0) -> str:
    return entry_from_config("n", {"task": "proj.tick", "schedule": every}).to_json()


def message(run: Run) -> Message:
    return Message(body=run.task_id.encode(), headers={"id": run.task_id, "task": "proj.tick"},
                   properties={}, content_type="application/json", content_encoding="utf-8",
                   queue="celery", exchange="celery", routing_key="celery", priority=0)


def make_messages(claimed: Any, two_step: bool) -> list[Message]:
    """For a fire on the transport's database: one transaction, never two steps."""
    assert two_step is False
    return [message(run) for run in claimed]


def two_step_messages(claimed: Any, two_step: bool) -> list[Message]:
    """For a fire that claims, then publishes through the callable."""
    assert two_step is True
    return [message(run) for run in claimed]


def must_not_publish(messages: list[Any]) -> None:
    raise AssertionError(f"published through the callable: {messages}")


def task_ids(transport: RedisTransport) -> list[str]:
    return [m.headers["id"] for m in transport.fetch(["celery"], 100, 0.1)]


def take(store: Any, name: Any, scheduled_at: Any, send_id: Any) -> bool:
    """`take_runs` for one run."""
    (taken,) = store.take_runs([(name, scheduled_at, send_id)])
    return taken  # type: ignore[no-any-return]


def leader(store: RedisScheduleStore, holder: str = "beat-1") -> str:
    assert store.acquire_lease(holder, 60)
    return holder


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisScheduleStore]:
    opened = RedisScheduleStore(redis_url)
    yield opened
    opened.close()


@pytest.fixture
def transport(redis_url: str) -> Iterator[RedisTransport]:
    opened = RedisTransport(redis_url)
    yield opened
    opened.close()


def test_registered_for_every_redis_scheme() -> None:
    for scheme in ("redis", "rediss", "redis+socket"):
        assert default_manager().get("schedule_stores", scheme) is RedisScheduleStore


@pytest.mark.parametrize("address", ["tls_url", "socket_url"])
def test_over_tls_and_the_unix_socket(redis_server: RedisServer, redis_url: str,
                                      address: str) -> None:
    store = RedisScheduleStore(getattr(redis_server, address))
    try:
        store.put("a", definition())
        holder = leader(store)
        assert store.claim_runs(holder, [Run("a", 1.0, "t-1")]) == [Run("a", 1.0, "t-1")]
        assert [e.name for e in store.load()[1]] == ["a"]
        assert store.wait_for_change(store.load()[0] - 1, 0) is True
    finally:
        store.close()


# -- fire: one transaction on the transport's database --------------------------

def test_fire_on_the_transports_database_claims_publishes_and_confirms_at_once(
        store: RedisScheduleStore, transport: RedisTransport) -> None:
    store.put("a", definition())
    holder = leader(store)
    runs = [Run("a", 1.0, "t-1"), Run("a", 2.0, "t-2"), Run("a", 2.0, "t-dup"),
            Run("gone", 1.0, "t-x")]
    assert store.fire(holder, runs, transport, make_messages, must_not_publish) == runs[:2]
    assert task_ids(transport) == ["t-1", "t-2"]
    assert store.unsent_runs() == []
    assert store.recent_runs("a") == [(runs[1], True), (runs[0], True)]
    made: list[Any] = []
    assert store.fire(holder, runs, transport, lambda c, _: made.append(c),
                      must_not_publish) == []
    assert made == [] and task_ids(transport) == []


def test_fire_through_another_address_of_the_same_server_is_one_transaction(
        redis_server: RedisServer, redis_url: str) -> None:
    store = RedisScheduleStore(redis_server.socket_url)
    transport = RedisTransport(redis_url, {"prefix": "other:"})  # the prefix does not matter
    try:
        store.put("a", definition())
        claimed = store.fire(leader(store), [Run("a", 1.0, "t-1")], transport, make_messages,
                             must_not_publish)
        assert claimed == [Run("a", 1.0, "t-1")] and task_ids(transport) == ["t-1"]
    finally:
        store.close()
        transport.close()


def test_fire_is_one_transaction_for_a_user_not_allowed_info(redis_server: RedisServer,
                                                             redis_url: str) -> None:
    admin = redis.Redis.from_url(redis_url)
    admin.acl_setuser("beat-noinfo", enabled=True, passwords=["+pw"], keys=["*"],
                      channels=["*"], commands=["+@all", "-info"])
    url = f"redis://beat-noinfo:pw@127.0.0.1:{redis_server.port}/0"
    store, transport = RedisScheduleStore(url), RedisTransport(url)
    try:
        with pytest.raises(redis.ResponseError):
            store.client.info("server")
        store.put("a", definition())
        claimed = store.fire(leader(store), [Run("a", 1.0, "t-1")], transport, make_messages,
                             must_not_publish)
        assert claimed == [Run("a", 1.0, "t-1")] and task_ids(transport) == ["t-1"]
    finally:
        store.close()
        transport.close()
        admin.acl_deluser("beat-noinfo")
        admin.close()


def test_fire_starts_over_when_a_claim_races_it(store: RedisScheduleStore,
                                                transport: RedisTransport,
                                                redis_url: str) -> None:
    store.put("a", definition())
    holder = leader(store)
    other = RedisScheduleStore(redis_url)
    calls: list[int] = []

    def make_while_another_claims(claimed: Any, two_step: bool) -> list[Message]:
        calls.append(len(claimed))
        if len(calls) == 1:  # between the WATCH and the EXEC
            assert other.claim_runs(holder, claimed) == list(claimed)
        return make_messages(claimed, two_step)

    try:
        run = Run("a", 1.0, "t-1")
        assert store.fire(holder, [run], transport, make_while_another_claims,
                          must_not_publish) == []
        assert calls == [1] and task_ids(transport) == []  # the race's claim is unsent
        assert store.unsent_runs() == [run]
    finally:
        other.close()


def test_fire_publishes_nothing_when_the_lease_changes_hands_meanwhile(
        store: RedisScheduleStore, transport: RedisTransport, redis_url: str) -> None:
    store.put("a", definition())
    holder = leader(store)
    other = RedisScheduleStore(redis_url)

    def make_while_the_lease_moves(claimed: Any, two_step: bool) -> list[Message]:
        other.release_lease(holder)
        assert other.acquire_lease("beat-2", 60)
        return make_messages(claimed, two_step)

    try:
        assert store.fire(holder, [Run("a", 1.0, "t-1")], transport,
                          make_while_the_lease_moves, must_not_publish) == []
        assert task_ids(transport) == []
        assert store.get("a").last_run_at is None  # type: ignore[union-attr]
    finally:
        other.close()


def test_fire_publishes_nothing_when_the_lease_lapses_meanwhile(
        store: RedisScheduleStore, transport: RedisTransport) -> None:
    store.put("a", definition())
    assert store.acquire_lease("beat-1", 0.3)
    lapses_at = store.now() + 0.3

    def make_while_the_lease_lapses(claimed: Any, two_step: bool) -> list[Message]:
        wait_until(lambda: store.now() > lapses_at + 0.05)  # Redis's clock; the key untouched
        return make_messages(claimed, two_step)

    assert store.fire("beat-1", [Run("a", 1.0, "t-1")], transport, make_while_the_lease_lapses,
                      must_not_publish) == []
    assert task_ids(transport) == []
    assert store.get("a").last_run_at is None  # type: ignore[union-attr]


def test_fire_with_the_transport_on_another_database_publishes_through_the_callable(
        store: RedisScheduleStore, redis_url: str) -> None:
    transport = RedisTransport(redis_url.rsplit("/", 1)[0] + "/1")
    transport.purge(["celery"])
    try:
        store.put("a", definition())
        run = Run("a", 1.0, "t-1")
        assert store.fire(leader(store), [run], transport, two_step_messages,
                          transport.publish) == [run]
        assert task_ids(transport) == ["t-1"]
        assert store.recent_runs("a") == [(run, True)]
    finally:
        transport.purge(["celery"])
        transport.close()


def test_fire_with_no_redis_transport_publishes_through_the_callable(
        store: RedisScheduleStore) -> None:
    store.put("a", definition())
    published: list[list[Any]] = []
    run = Run("a", 1.0, "t-1")
    assert store.fire(leader(store), [run], object(), two_step_messages,
                      published.append) == [run]
    assert [[m.headers["id"] for m in batch] for batch in published] == [["t-1"]]


def test_a_claim_key_written_wrong_fails_before_anything_moves_or_is_published(
        store: RedisScheduleStore, transport: RedisTransport) -> None:
    store.put("a", definition())
    holder = leader(store)
    store.client.set(P + "runs:a", "not a sorted set")
    run = Run("a", 1.0, "t-1")
    with pytest.raises(redis.ResponseError, match=f"{P}runs:a holds a string.*delete it"):
        store.claim_runs(holder, [run])
    with pytest.raises(redis.ResponseError, match=f"{P}runs:a holds a string"):
        store.fire(holder, [run], transport, two_step_messages, transport.publish)
    assert store.get("a").last_run_at is None  # type: ignore[union-attr]
    assert task_ids(transport) == []
    store.client.delete(P + "runs:a")
    assert store.claim_runs(holder, [run]) == [run]


# -- keys written wrong by another program --------------------------------------

def write_garbage(client: Any) -> None:
    """What another program might leave in the store's keys."""
    client.hset(P + "defs", mapping={"not-json": "{oops", "not-utf8": b"\xff\xfe{"})
    client.hset(P + "last_run", mapping={"not-json": "yesterday", "not-utf8": "nan",
                                         "orphan": "5"})
    client.hset(P + "count", mapping={"not-json": "many", "not-utf8": "1.5"})
    client.hset(P + "changed_at", mapping={"not-json": "later", "not-utf8": "inf"})
    client.hset(P + "source", mapping={"not-json": "elsewhere", "not-utf8": "config"})
    client.zadd(P + "versions", {"ghost": 10**6})  # a version and no definition
    client.set(P + "cursor", "abc")
    client.zadd(P + "unsent", {"no-bar": 1, "7.0|no-record": 7, "x|not-a-number": 8})
    client.rpush(P + "last_task", "a list, not a hash")


def test_garbage_does_not_break_load_changes_or_get(store: RedisScheduleStore) -> None:
    store.put("good", definition())
    write_garbage(store.client)
    cursor, entries = store.load()
    assert cursor == 0  # unreadable
    by_name = {e.name: e for e in entries}
    assert sorted(by_name) == ["good", "not-json", "not-utf8"]  # 'orphan' has no definition
    bad = by_name["not-json"]
    assert (bad.definition, bad.source, bad.last_run_at, bad.total_run_count, bad.changed_at,
            bad.last_task_id) == ("{oops", "api", None, 0, 0.0, None)
    odd = by_name["not-utf8"]
    assert (odd.definition, odd.source, odd.last_run_at, odd.total_run_count, odd.changed_at
            ) == ("\ufffd\ufffd{", "config", None, 0, 0.0)
    assert store.get("not-json") == bad and store.get("orphan") is None
    assert store.changes(5) == Changes(0, entries, [])  # ahead of the store: everything
    assert store.changes(0).removed == ["ghost"]
    assert store.unsent_runs() == [] and store.recent_runs() == []


def test_garbage_run_state_can_still_be_claimed_and_the_cursor_recovers(
        store: RedisScheduleStore) -> None:
    write_garbage(store.client)
    store.client.delete(P + "last_task")  # claims write it: a list fails them (tested above)
    holder = leader(store)
    assert store.claim_runs(holder, [Run("not-json", 5.0, "t-1")]) == [Run("not-json", 5.0, "t-1")]
    assert store.get("not-json").total_run_count == 1  # type: ignore[union-attr]
    store.put("new", definition())  # the cursor restarts above every version
    cursor = store.load()[0]
    assert cursor > 10**6 and [e.name for e in store.changes(10**6).changed] == ["new"]


def test_a_lease_key_without_expiry_is_free(store: RedisScheduleStore) -> None:
    store.client.set(P + "lease", "someone, forever")
    assert store.lease() is None
    assert store.acquire_lease("beat-1", 60)
    holder, left = store.lease()  # type: ignore[misc]
    assert holder == "beat-1" and 0 < left <= 60


def test_bad_arguments_are_refused_naming_what_is_wrong(store: RedisScheduleStore) -> None:
    with pytest.raises(ValueError, match="source must be one of"):
        store.put("a", definition(), source="cli")
    with pytest.raises(ValueError, match="cursor must be an integer"):
        store.changes("3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scheduled_at must be finite"):
        store.claim_runs("beat-1", [Run("a", float("nan"), "t")])
    with pytest.raises(ValueError, match="limit must be"):
        store.recent_runs(limit=-1)


# -- a restart, reopening, the prefix --------------------------------------------

def start_redis(port: int, data: Path) -> subprocess.Popen[bytes]:
    """A redis-server that keeps its data across restarts (AOF, fsync always)."""
    binary = require_binary("redis-server", "redis-server")
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                               "--dir", str(data), "--appendonly", "yes",
                               "--appendfsync", "always", "--save", ""],
                              stdout=subprocess.DEVNULL)
    probe = redis.Redis(port=port)

    def answers() -> bool:
        try:
            return bool(probe.ping())
        except redis.ConnectionError:
            return False

    wait_until(answers)
    probe.close()
    return server


def test_the_store_carries_on_across_a_server_restart(tmp_path: Path) -> None:
    port = free_port()
    server = start_redis(port, tmp_path)
    store = RedisScheduleStore(f"redis://127.0.0.1:{port}/0")
    try:
        store.put("a", definition())
        holder = leader(store)
        assert store.claim_runs(holder, [Run("a", 1.0, "t-1")])
        cursor = store.load()[0]
        server.terminate()
        server.wait(20)
        with pytest.raises(redis.ConnectionError):
            store.load()
        server = start_redis(port, tmp_path)  # its script cache is empty
        assert store.claim_runs(holder, [Run("a", 2.0, "t-2")]) == [Run("a", 2.0, "t-2")]
        store.put("b", definition())
        assert [e.name for e in store.changes(cursor).changed] == ["b"]
        assert store.wait_for_change(cursor, 0) is True
        assert [r.task_id for r in store.unsent_runs()] == ["t-1", "t-2"]
    finally:
        store.close()
        server.terminate()
        server.wait(20)


def test_a_closed_store_reopens_with_everything(store: RedisScheduleStore,
                                                redis_url: str) -> None:
    store.sync_config({"c": definition(5)})
    store.put("a", definition())
    holder = leader(store)
    runs = [Run("a", 1.0, "t-1"), Run("c", 2.0, "t-2")]
    store.claim_runs(holder, runs)
    store.confirm_runs(runs[:1])
    before = (store.load(), store.recent_runs(), store.unsent_runs())
    store.close()
    store.close()  # idempotent
    reopened = RedisScheduleStore(redis_url)
    try:
        assert (reopened.load(), reopened.recent_runs(), reopened.unsent_runs()) == before
        assert reopened.lease()[0] == holder  # type: ignore[index]
        assert reopened.changes(before[0][0]) == Changes(before[0][0], [], [])
    finally:
        reopened.close()


def test_the_prefix_option_keeps_two_stores_apart(redis_url: str) -> None:
    one = RedisScheduleStore(redis_url, {"prefix": "one:"})
    two = RedisScheduleStore(redis_url, {"prefix": "two:"})
    try:
        one.put("a", definition())
        assert one.acquire_lease("beat-1", 60) and two.acquire_lease("beat-2", 60)
        assert two.load() == (0, [])
        assert {k.split(b"beat:")[0] for k in one.client.keys("*")} == {b"one:", b"two:"}
    finally:
        one.close()
        two.close()


# -- pruning -----------------------------------------------------------------------

def test_tombstones_older_than_a_day_are_pruned_and_older_cursors_get_everything(
        store: RedisScheduleStore) -> None:
    for name in ("a", "b", "c"):
        store.put(name, definition())
    cursor = store.load()[0]
    assert store.remove("a")
    store.client.zadd(P + "tombs", {"a": store.now() - DAY - 1})  # removed two days ago
    assert store.remove("b")  # prunes a's tombstone
    assert store.client.zscore(P + "versions", "a") is None
    changes = store.changes(cursor)
    assert changes == Changes(changes.cursor, store.load()[1], [])
    after_a = cursor + 1
    assert store.changes(after_a).removed == ["b"]  # still known


def test_run_records_beyond_a_day_and_the_last_100_are_pruned_once_sent(
        store: RedisScheduleStore) -> None:
    store.put("a", definition())
    holder = leader(store)
    start = store.now() - 3 * DAY
    runs = [Run("a", start + i, f"t-{i}") for i in range(150)]
    assert len(store.claim_runs(holder, runs)) == 150
    assert len(store.recent_runs("a", limit=1000)) == 150  # unsent: kept
    store.confirm_runs(runs)
    for run in runs:  # workers took every run: the marks go with the records
        assert take(store, "a", run.scheduled_at, "send-1")
    for i in range(200, 210):  # an entry's records are pruned at every 16th claim: the 160th
        assert store.claim_runs(holder, [Run("a", start + i, f"t-{i}")])
    kept = store.recent_runs("a", limit=1000)
    assert [r.task_id for r, _ in kept][-1] == "t-60" and len(kept) == 100
    assert len(store.recent_runs(limit=1000)) == 100
    assert store.client.hlen(P + "run") == 100
    assert store.client.hlen(P + "taken") == 90  # t-60..t-149; the newer ones never taken
    assert not take(store, "a", start + 60, "send-2")


def test_a_taken_key_written_wrong_drops_no_copy_and_fails_claims_by_name(
        store: RedisScheduleStore) -> None:
    store.put("a", definition())
    holder = leader(store)
    assert store.claim_runs(holder, [Run("a", 1.0, "t-1")])
    store.client.set(P + "taken", "not a hash")
    assert take(store, "a", 1.0, "send-1") is True  # a worker runs it
    assert take(store, "a", 1.0, "send-2") is True  # nothing known to drop it for
    with pytest.raises(redis.ResponseError, match=f"{P}taken holds a string.*delete it"):
        store.claim_runs(holder, [Run("a", 2.0, "t-2")])
    store.client.delete(P + "taken")
    assert take(store, "a", 1.0, "send-1") is True
    assert take(store, "a", 1.0, "send-2") is False
