"""The SQLite schedule store beyond the contract: ``fire`` on the broker's
own file claims, sends and confirms in one transaction; another file falls
back to claim + publish + confirm; state survives closing and reopening;
``changes`` reads an index, never the whole table; old run records and
tombstones are pruned, and a cursor older than the pruned tombstones gets
everything.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest

from corekit.messages import Message
from corekit.pluginmanager import default_manager
from corekit.schedules.entry import entry_from_config
from corekit.schedules.store import Run, ScheduleStore
from corekit.transport import Transport

PM = default_manager()
DAY = 86_400.0


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'broker.sqlite3'}"


@pytest.fixture
def opened() -> Iterator[list[Any]]:
    """Stores and transports the test opens, closed at the end."""
    things: list[Any] = []
    yield things
    for thing in things:
        thing.close()


def open_store(opened: list[Any], url: str) -> ScheduleStore:
    opened.append(PM.get("schedule_stores", "sqlite")(url))
    return opened[-1]  # type: ignore[no-any-return]


def open_transport(opened: list[Any], url: str) -> Transport:
    opened.append(PM.get("transports", "sqlite")(url, {}))
    return opened[-1]  # type: ignore[no-any-return]


def definition(every: float = 1.0) -> str:
    return entry_from_config("n", {"task": "proj.tick", "schedule": every}).to_json()


def make_messages(runs: Sequence[Run], two_step: bool = False) -> list[Message]:
    return [Message(body=b"[[], {}, {}]", headers={"id": r.task_id, "task": "proj.tick"},
                    properties={"correlation_id": r.task_id},
                    content_type="application/json", queue="celery") for r in runs]


def never_publish(messages: list[Any]) -> None:
    raise AssertionError("the single-transaction fire must not use the publish callable")


def take(store: Any, name: Any, scheduled_at: Any, send_id: Any) -> bool:
    """`take_runs` for one run."""
    (taken,) = store.take_runs([(name, scheduled_at, send_id)])
    return taken  # type: ignore[no-any-return]


def leader(store: ScheduleStore) -> str:
    assert store.acquire_lease("beat-1", 60)
    return "beat-1"


def raw_sql(store: Any, sql: str, *params: Any) -> None:
    """What another program does to the file."""
    conn = sqlite3.connect(store.path, isolation_level=None)
    try:
        conn.execute(sql, params)
    finally:
        conn.close()


def fetched_ids(transport: Transport) -> list[str]:
    got = transport.fetch(["celery"], 100, 1.0)
    transport.ack(got)
    return sorted(m.headers["id"] for m in got)


# -- fire ----------------------------------------------------------------------

def test_fire_on_the_brokers_file_sends_in_the_claims_transaction(opened: list[Any],
                                                                    url: str) -> None:
    store, transport = open_store(opened, url), open_transport(opened, url)
    store.put("a", definition())
    store.put("b", definition())
    runs = [Run("a", 10.0, "t-a"), Run("b", 10.0, "t-b"), Run("a", 10.0, "t-again")]
    steps: list[bool] = []

    def make(runs: Sequence[Run], two_step: bool) -> list[Message]:
        steps.append(two_step)
        return make_messages(runs)

    claimed = store.fire(leader(store), runs, transport, make, never_publish)
    assert claimed == runs[:2] and steps == [False]
    assert fetched_ids(transport) == ["t-a", "t-b"]
    assert store.unsent_runs() == []
    assert {(r.task_id, sent) for r, sent in store.recent_runs()} == {("t-a", True),
                                                                      ("t-b", True)}
    assert store.fire("beat-1", runs, transport, make_messages, never_publish) == []


def test_fire_that_fails_to_build_messages_claims_nothing(opened: list[Any], url: str) -> None:
    store, transport = open_store(opened, url), open_transport(opened, url)
    store.put("a", definition())

    def broken(runs: Sequence[Run], two_step: bool) -> list[Message]:
        raise RuntimeError("cannot encode")

    with pytest.raises(RuntimeError):
        store.fire(leader(store), [Run("a", 10.0, "t-1")], transport, broken, never_publish)
    entry = store.get("a")
    assert entry is not None and (entry.last_run_at, entry.total_run_count) == (None, 0)
    assert store.recent_runs() == [] and transport.queue_size("celery") == 0
    # and the run can still be fired
    assert store.fire("beat-1", [Run("a", 10.0, "t-1")], transport, make_messages,
                      never_publish) == [Run("a", 10.0, "t-1")]


def test_fire_by_a_non_holder_sends_nothing(opened: list[Any], url: str) -> None:
    store, transport = open_store(opened, url), open_transport(opened, url)
    store.put("a", definition())
    leader(store)
    assert store.fire("impostor", [Run("a", 1.0, "t-1")], transport, make_messages,
                      never_publish) == []
    assert transport.queue_size("celery") == 0


def test_fire_with_a_transport_not_yet_connected(tmp_path: Path, opened: list[Any]) -> None:
    """The transport's tables are created before the store takes the write
    lock (creating them under it would wait on ourselves)."""
    url = f"sqlite://{tmp_path / 'fresh.sqlite3'}"
    store = open_store(opened, url)
    store.put("a", definition())
    transport = open_transport(opened, url)  # never connected: no messages table yet
    assert store.fire(leader(store), [Run("a", 1.0, "t-1")], transport, make_messages,
                      never_publish) == [Run("a", 1.0, "t-1")]
    assert fetched_ids(transport) == ["t-1"]


@pytest.mark.parametrize("spelling", ["default", "symlinked-directory"])
def test_the_same_file_named_another_way_is_still_one_transaction(
        tmp_path: Path, opened: list[Any], monkeypatch: pytest.MonkeyPatch, spelling: str
        ) -> None:
    monkeypatch.chdir(tmp_path)
    if spelling == "default":
        store = open_store(opened, "sqlite://")  # ./corekit.sqlite3
    else:
        (tmp_path / "link").symlink_to(tmp_path)
        store = open_store(opened, f"sqlite://{tmp_path / 'link' / 'corekit.sqlite3'}")
    transport = open_transport(opened, f"sqlite://{tmp_path / 'corekit.sqlite3'}")
    store.put("a", definition())
    assert store.fire(leader(store), [Run("a", 1.0, "t-1")], transport, make_messages,
                      never_publish)
    assert (tmp_path / "corekit.sqlite3").exists()
    assert fetched_ids(transport) == ["t-1"]


def test_fire_with_a_broker_in_another_file_falls_back(tmp_path: Path, opened: list[Any]
                                                       ) -> None:
    store = open_store(opened, f"sqlite://{tmp_path / 'beat.sqlite3'}")
    transport = open_transport(opened, f"sqlite://{tmp_path / 'broker.sqlite3'}")
    store.put("a", definition())
    published: list[list[Message]] = []
    steps: list[bool] = []

    def publish(messages: list[Message]) -> None:
        assert store.unsent_runs() == [Run("a", 1.0, "t-1")]  # claimed, not yet confirmed
        published.append(messages)
        transport.publish(messages)

    def make(runs: Sequence[Run], two_step: bool) -> list[Message]:
        steps.append(two_step)
        return make_messages(runs)

    assert store.fire(leader(store), [Run("a", 1.0, "t-1")], transport, make,
                      publish) == [Run("a", 1.0, "t-1")]
    assert steps == [True]  # the beat marks such messages for the workers' take_run
    assert len(published) == 1 and fetched_ids(transport) == ["t-1"]
    assert store.unsent_runs() == [] and store.recent_runs() == [(Run("a", 1.0, "t-1"), True)]


# -- durability ----------------------------------------------------------------

def test_everything_survives_close_and_reopen(opened: list[Any], url: str) -> None:
    store = open_store(opened, url)
    store.sync_config({"cfg": definition()})
    store.put("api", definition(2.0))
    store.put("gone", definition())
    holder = leader(store)
    assert store.claim_runs(holder, [Run("cfg", 5.0, "t-1"), Run("api", 6.0, "t-2")])
    store.confirm_runs([Run("cfg", 5.0, "t-1")])
    cursor_before = store.load()[0]
    store.remove("gone")
    before = store.load()
    store.close()
    store.close()  # idempotent

    again = open_store(opened, url)
    assert again.load() == before
    assert again.changes(cursor_before).removed == ["gone"]
    assert again.unsent_runs() == [Run("api", 6.0, "t-2")]
    assert again.lease()[0] == "beat-1"  # type: ignore[index]
    assert again.claim_runs(holder, [Run("cfg", 5.0, "t-3")]) == []  # already ran
    assert store.get("cfg") is not None  # a closed store reconnects on use


# -- cost and pruning ----------------------------------------------------------

def _plans(store: Any, call: Any) -> list[str]:
    """The query plans of every SELECT *call* runs on this thread's connection."""
    conn = store.db.conn()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        call()
    finally:
        conn.set_trace_callback(None)
    return [" | ".join(str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
            for sql in statements if sql.lstrip().upper().startswith("SELECT")]


def test_changes_reads_indexes_not_every_entry(opened: list[Any], url: str) -> None:
    store = open_store(opened, url)
    store.sync_config({f"e{i}": definition() for i in range(200)})
    cursor = store.load()[0]
    store.put("e7", definition(2.0))
    store.remove("e8")
    plans = _plans(store, lambda: store.changes(cursor))
    assert any("corekit_beat_entries_version" in p for p in plans), plans
    assert any("corekit_beat_removed_version" in p for p in plans), plans
    assert not any("SCAN corekit_beat_entries" in p for p in plans), plans
    found = store.changes(cursor)
    assert [e.name for e in found.changed] == ["e7"] and found.removed == ["e8"]


def test_old_run_records_are_pruned_beyond_the_last_hundred(
        opened: list[Any], url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import corekit.plugins.sqlite.schedule_store as module

    store = open_store(opened, url)
    store.put("a", definition())
    store.put("b", definition())
    holder = leader(store)
    long_ago = store.now() - 3 * DAY
    old = [Run("a", long_ago + i, f"a-{i}") for i in range(150)]
    assert len(store.claim_runs(holder, old + [Run("b", long_ago, "b-0")])) == 151
    store.confirm_runs(old[1:])  # a-0 stays unsent
    for run in old:  # workers took every run: the marks go with the records
        assert take(store, "a", run.scheduled_at, "send-1")
    raw_sql(store, "UPDATE corekit_beat_runs SET claimed_at = ?", long_ago)
    monkeypatch.setattr(module, "PRUNE_ONE_IN", 1)
    assert store.claim_runs(holder, [Run("a", store.now(), "a-new")])
    kept = [r.task_id for r, _ in store.recent_runs("a", limit=1000)]
    assert len(kept) == 101  # the newest 100, and the one never sent
    assert kept[0] == "a-new" and kept[99] == "a-51" and kept[100] == "a-0"
    assert [r.task_id for r, _ in store.recent_runs("b")] == ["b-0"]  # another entry: untouched
    conn = sqlite3.connect(store.path)
    try:
        taken = conn.execute("SELECT count(*) FROM corekit_beat_taken").fetchone()[0]
    finally:
        conn.close()
    assert taken == 100  # a-0 and a-51..a-149
    assert not take(store, "a", long_ago + 51, "send-2")


def test_a_mark_that_is_no_text_drops_no_copy(opened: list[Any], url: str) -> None:
    store = open_store(opened, url)
    store.put("a", definition())
    assert store.claim_runs(leader(store), [Run("a", 1.0, "t-1")])
    # a blob keeps its type in a TEXT column (numbers become text: a send id like any)
    raw_sql(store, "INSERT INTO corekit_beat_taken VALUES ('a', 1.0, ?)", b"\xff\xfe")
    assert take(store, "a", 1.0, "send-1") is True
    assert take(store, "a", 1.0, "send-2") is True


def test_a_mark_that_is_not_utf8_is_another_send(opened: list[Any], url: str) -> None:
    store = open_store(opened, url)
    store.put("a", definition())
    assert store.claim_runs(leader(store), [Run("a", 1.0, "t-1")])
    raw_sql(store, "INSERT INTO corekit_beat_taken VALUES ('a', 1.0, CAST(X'C328FF' AS TEXT))")
    assert take(store, "a", 1.0, "send-1") is False  # read without failing the query


def test_a_cursor_older_than_pruned_tombstones_gets_everything(opened: list[Any], url: str
                                                                ) -> None:
    store = open_store(opened, url)
    for name in ("a", "b", "c"):
        store.put(name, definition())
    old_cursor = store.load()[0]
    store.remove("a")
    raw_sql(store, "UPDATE corekit_beat_removed SET removed_at = removed_at - 30 * 86400")
    store.remove("b")  # prunes a's tombstone
    found = store.changes(old_cursor)
    assert sorted(e.name for e in found.changed) == ["c"]  # everything there is
    newer = store.load()[0]
    store.remove("c")
    assert store.changes(newer).removed == ["c"]


@pytest.mark.parametrize("bad", ["sqlite://:memory:", "redis://localhost/0", "sqlite:/x.db"])
def test_a_url_that_names_no_shareable_file_is_refused(bad: str) -> None:
    from corekit.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="sqlite"):
        PM.get("schedule_stores", "sqlite")(bad)
