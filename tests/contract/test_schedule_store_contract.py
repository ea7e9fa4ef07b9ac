"""The schedule-store contract (`corekit.schedules.store`), on every store:
definitions and the change cursor, ``sync_config``, the leader lease, run
claims (fencing, once per run, in order), confirmations, ``fire``, the run
history, ``wait_for_change`` across processes, two processes racing to
claim the same runs, and workers taking runs (``take_runs``) for one send.

Each store is opened through the plugin manager by URL scheme; a scheme no
installed plugin registers is skipped with the reason.  Waits poll a
condition up to a deadline; nothing asserts on elapsed time.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from corekit.pluginmanager import default_manager
from corekit.schedules.entry import entry_from_config
from corekit.schedules.store import Run, ScheduleStore

PM = default_manager()
DRIVER = Path(__file__).with_name("schedule_store_driver.py")
MakeStore = Callable[[], ScheduleStore]


def _sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'beat.sqlite3'}"


def _redis_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(request.getfixturevalue("redis_url"))  # the session's server, emptied


def _django_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    from corekit.contrib.django import models

    for model in (models.PeriodicTask, models.BeatState, models.BeatLease, models.BeatRun,
                  models.BeatTaken, models.BeatRemoved):
        model.objects.all().delete()
    return "django-db"


URLS = {"sqlite": _sqlite_url, "redis": _redis_url}
#: Django is set up for good in a process that tests django-db (tests/contract/
#: conftest.py, when tests/contrib/django/test_django_beat.py runs this suite)
if os.environ.get("COREKIT_CONTRACT_DJANGO"):
    URLS["django-db"] = _django_db_url


@pytest.fixture(params=sorted(URLS))
def scheme(request: pytest.FixtureRequest) -> str:
    if request.param not in PM.registry("schedule_stores"):
        pytest.skip(f"no installed plugin registers a {request.param}:// schedule store")
    return str(request.param)


@pytest.fixture
def store_url(scheme: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return URLS[scheme](request, tmp_path)


@pytest.fixture
def make_store(scheme: str, store_url: str) -> Iterator[MakeStore]:
    """``make_store()``: another store object (another beat) on this test's store."""
    made: list[ScheduleStore] = []

    def make() -> ScheduleStore:
        made.append(PM.get("schedule_stores", scheme)(store_url))
        return made[-1]

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(make_store: MakeStore) -> ScheduleStore:
    return make_store()


def definition(every: float = 1.0, task: str = "proj.tick", **item: Any) -> str:
    return entry_from_config("n", {"task": task, "schedule": every, **item}).to_json()


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.02)


def names(entries: Any) -> list[str]:
    return sorted(e.name for e in entries)


def take(store: Any, name: Any, scheduled_at: Any, send_id: Any) -> bool:
    """`take_runs` for one run."""
    (taken,) = store.take_runs([(name, scheduled_at, send_id)])
    return taken  # type: ignore[no-any-return]


def leader(store: ScheduleStore, holder: str = "beat-1") -> str:
    assert store.acquire_lease(holder, 60)
    return holder


# -- definitions and the cursor ---------------------------------------------------

def test_an_empty_store(store: ScheduleStore) -> None:
    cursor, entries = store.load()
    assert entries == [] and isinstance(cursor, int)
    assert store.get("nothing") is None
    assert store.changes(cursor) == (cursor, [], [])
    assert store.unsent_runs() == [] and store.recent_runs() == []
    assert store.lease() is None


def test_put_then_get_and_load(store: ScheduleStore) -> None:
    before = store.now()
    store.put("tick", definition())
    entry = store.get("tick")
    assert entry is not None
    assert (entry.name, entry.definition, entry.source) == ("tick", definition(), "api")
    assert (entry.last_run_at, entry.last_task_id, entry.total_run_count) == (None, None, 0)
    assert before - 1 <= entry.changed_at <= store.now() + 1  # the store's clock
    assert store.load()[1] == [entry]


def test_each_put_and_remove_moves_the_cursor(store: ScheduleStore) -> None:
    c0 = store.load()[0]
    store.put("a", definition())
    c1 = store.changes(c0).cursor
    store.put("a", definition())  # even the same text
    c2 = store.changes(c1).cursor
    store.remove("a")
    c3 = store.changes(c2).cursor
    assert c0 != c1 != c2 != c3 and len({c0, c1, c2, c3}) == 4


def test_changes_lists_only_what_changed_since_the_cursor(make_store: MakeStore) -> None:
    store, other = make_store(), make_store()
    for name in ("a", "b", "c"):
        store.put(name, definition())
    cursor = store.load()[0]
    other.put("b", definition(2.0))
    other.put("d", definition())
    found = store.changes(cursor)
    assert names(found.changed) == ["b", "d"] and found.removed == []
    assert store.get("b").definition == definition(2.0)  # type: ignore[union-attr]
    assert store.changes(found.cursor) == (found.cursor, [], [])


def test_disabling_through_put_is_a_change(store: ScheduleStore) -> None:
    store.put("a", definition())
    cursor = store.load()[0]
    store.put("a", definition(enabled=False))
    [changed] = store.changes(cursor).changed
    assert json.loads(changed.definition)["enabled"] is False


def test_remove_reports_removals_and_whether_there_was_one(store: ScheduleStore) -> None:
    store.put("a", definition())
    store.put("b", definition())
    cursor = store.load()[0]
    assert store.remove("a") is True
    assert store.remove("a") is False
    assert store.remove("never-there") is False
    found = store.changes(cursor)
    assert found.changed == [] and found.removed == ["a"]
    assert store.get("a") is None and names(store.load()[1]) == ["b"]


def test_an_entry_added_again_after_removal_is_changed_not_removed(store: ScheduleStore
                                                                  ) -> None:
    store.put("a", definition())
    cursor = store.load()[0]
    store.remove("a")
    store.put("a", definition(3.0))
    found = store.changes(cursor)
    assert names(found.changed) == ["a"] and found.removed == []


def test_a_future_cursor_answers_with_everything(store: ScheduleStore) -> None:
    store.put("a", definition())
    store.put("b", definition())
    cursor = store.load()[0]
    found = store.changes(cursor + 1000)
    assert names(found.changed) == ["a", "b"]


def test_put_keeps_the_run_state(store: ScheduleStore) -> None:
    store.put("a", definition())
    holder = leader(store)
    assert store.claim_runs(holder, [Run("a", 100.0, "t-1")])
    before = store.get("a")
    store.put("a", definition(5.0))
    after = store.get("a")
    assert after is not None and before is not None
    assert (after.last_run_at, after.last_task_id, after.total_run_count) == (100.0, "t-1", 1)
    assert after.changed_at >= before.changed_at


def test_remove_deletes_the_run_state(store: ScheduleStore) -> None:
    store.put("a", definition())
    assert store.claim_runs(leader(store), [Run("a", 100.0, "t-1")])
    store.remove("a")
    store.put("a", definition())
    entry = store.get("a")
    assert entry is not None and (entry.last_run_at, entry.total_run_count) == (None, 0)


@pytest.mark.parametrize("call", [
    lambda s: s.put("a", b"{}"), lambda s: s.put("a", None), lambda s: s.put("", "{}"),
    lambda s: s.put("a", "{}", source="cli"), lambda s: s.changes("3"),
    lambda s: s.acquire_lease("h", 0), lambda s: s.acquire_lease("h", -1),
    lambda s: s.acquire_lease("h", float("nan")), lambda s: s.acquire_lease("", 5),
    lambda s: s.sync_config({"a": 1}),
], ids=["bytes-definition", "none-definition", "empty-name", "unknown-source",
        "text-cursor", "zero-ttl", "negative-ttl", "nan-ttl", "empty-holder",
        "sync-non-text"])
def test_bad_input_is_refused_with_a_clear_error(store: ScheduleStore,
                                                 call: Callable[[ScheduleStore], Any]) -> None:
    with pytest.raises((TypeError, ValueError)) as info:
        call(store)
    assert str(info.value)
    assert store.load()[1] == []  # and nothing was written


def test_concurrent_puts_from_threads_all_land(store: ScheduleStore) -> None:
    cursor = store.load()[0]

    def put_many(prefix: str) -> None:
        for i in range(25):
            store.put(f"{prefix}{i}", definition())

    threads = [threading.Thread(target=put_many, args=(p,)) for p in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.load()[1]) == 100
    assert len(store.changes(cursor).changed) == 100


# -- sync_config ------------------------------------------------------------------

def test_sync_config_puts_replaces_and_removes_config_entries_only(store: ScheduleStore
                                                                    ) -> None:
    store.sync_config({"keep": definition(), "change": definition(), "drop": definition()})
    store.put("api-entry", definition(7.0))
    store.put("taken-over", definition(8.0))
    kept_at = store.get("keep").changed_at  # type: ignore[union-attr]
    cursor = store.load()[0]
    store.sync_config({"keep": definition(), "change": definition(2.0),
                       "new": definition(), "taken-over": definition(9.0)})
    found = store.changes(cursor)
    assert names(found.changed) == ["change", "new", "taken-over"]
    assert found.removed == ["drop"]
    entries = {e.name: e for e in store.load()[1]}
    assert sorted(entries) == ["api-entry", "change", "keep", "new", "taken-over"]
    assert entries["api-entry"].source == "api"  # left alone
    assert entries["taken-over"].source == "config"
    assert entries["taken-over"].definition == definition(9.0)
    assert entries["keep"].changed_at == kept_at  # not rewritten


def test_sync_config_with_nothing_new_does_not_move_the_cursor(store: ScheduleStore) -> None:
    store.sync_config({"a": definition()})
    cursor = store.load()[0]
    store.sync_config({"a": definition()})
    assert store.changes(cursor) == (cursor, [], [])


def test_sync_config_turns_an_identical_api_entry_into_config(store: ScheduleStore) -> None:
    store.put("a", definition())
    store.sync_config({"a": definition()})
    assert store.get("a").source == "config"  # type: ignore[union-attr]
    store.sync_config({})
    assert store.get("a") is None


def test_sync_config_keeps_the_run_state(store: ScheduleStore) -> None:
    store.sync_config({"a": definition()})
    assert store.claim_runs(leader(store), [Run("a", 50.0, "t-1")])
    store.sync_config({"a": definition(4.0)})
    entry = store.get("a")
    assert entry is not None and (entry.last_run_at, entry.total_run_count) == (50.0, 1)


# -- the lease --------------------------------------------------------------------

def test_lease_is_taken_renewed_refused_and_released(make_store: MakeStore) -> None:
    store, other = make_store(), make_store()
    assert store.acquire_lease("beat-1", 30)
    holder, left = store.lease()  # type: ignore[misc]
    assert holder == "beat-1" and 0 < left <= 30
    assert store.acquire_lease("beat-1", 60)  # renewed by the holder
    assert other.lease()[1] > 30  # type: ignore[index]
    assert not other.acquire_lease("beat-2", 30)
    other.release_lease("beat-2")  # not the holder: nothing happens
    assert other.lease()[0] == "beat-1"  # type: ignore[index]
    store.release_lease("beat-1")
    assert other.lease() is None
    assert other.acquire_lease("beat-2", 30)  # at once after a clean release


def test_a_lease_lapses_after_its_ttl(make_store: MakeStore) -> None:
    store, other = make_store(), make_store()
    assert store.acquire_lease("beat-1", 0.3)
    assert not other.acquire_lease("beat-2", 30)
    wait_until(lambda: other.acquire_lease("beat-2", 30))
    assert other.lease()[0] == "beat-2"  # type: ignore[index]
    assert not store.acquire_lease("beat-1", 30)  # the old holder cannot renew it back


# -- claiming runs ----------------------------------------------------------------

def test_claim_moves_the_run_state_and_records_the_run(store: ScheduleStore) -> None:
    store.put("a", definition())
    holder = leader(store)
    assert store.claim_runs(holder, [Run("a", 100.0, "t-1")]) == [Run("a", 100.0, "t-1")]
    entry = store.get("a")
    assert entry is not None
    assert (entry.last_run_at, entry.last_task_id, entry.total_run_count) == (100.0, "t-1", 1)
    assert store.unsent_runs() == [Run("a", 100.0, "t-1")]
    assert store.recent_runs("a") == [(Run("a", 100.0, "t-1"), False)]


def test_only_the_lease_holder_claims(make_store: MakeStore) -> None:
    store, other = make_store(), make_store()
    store.put("a", definition())
    run = Run("a", 100.0, "t-1")
    assert store.claim_runs("beat-1", [run]) == []  # no lease at all
    leader(store, "beat-1")
    assert other.claim_runs("beat-2", [run]) == []  # someone else's lease
    assert store.get("a").total_run_count == 0  # type: ignore[union-attr]
    assert store.unsent_runs() == []
    assert store.claim_runs("beat-1", [run]) == [run]


def test_a_lapsed_lease_claims_nothing(make_store: MakeStore) -> None:
    store, other = make_store(), make_store()
    store.put("a", definition())
    assert store.acquire_lease("beat-1", 0.3)
    wait_until(lambda: store.lease() is None)
    assert store.claim_runs("beat-1", [Run("a", 100.0, "t-1")]) == []
    assert other.acquire_lease("beat-2", 30)
    assert other.claim_runs("beat-2", [Run("a", 100.0, "t-2")]) == [Run("a", 100.0, "t-2")]


def test_a_run_is_claimed_once(make_store: MakeStore) -> None:
    store, other = make_store(), make_store()
    store.put("a", definition())
    holder = leader(store)
    twice = [Run("a", 100.0, "t-1"), Run("a", 100.0, "t-2")]
    assert store.claim_runs(holder, twice) == [Run("a", 100.0, "t-1")]
    assert other.claim_runs(holder, [Run("a", 100.0, "t-3")]) == []
    assert store.get("a").last_task_id == "t-1"  # type: ignore[union-attr]


def test_an_older_run_is_refused(store: ScheduleStore) -> None:
    store.put("a", definition())
    holder = leader(store)
    assert store.claim_runs(holder, [Run("a", 200.0, "t-2")])
    assert store.claim_runs(holder, [Run("a", 150.0, "t-1")]) == []
    entry = store.get("a")
    assert entry is not None and (entry.last_run_at, entry.total_run_count) == (200.0, 1)


def test_missing_and_removed_entries_are_refused(store: ScheduleStore) -> None:
    store.put("a", definition())
    store.put("b", definition())
    holder = leader(store)
    store.remove("b")
    claimed = store.claim_runs(holder, [Run("never", 1.0, "t-0"), Run("b", 1.0, "t-1"),
                                        Run("a", 1.0, "t-2")])
    assert claimed == [Run("a", 1.0, "t-2")]
    assert store.get("b") is None and store.unsent_runs() == [Run("a", 1.0, "t-2")]


def test_a_batch_is_claimed_in_order(store: ScheduleStore) -> None:
    for name in "abc":
        store.put(name, definition())
    holder = leader(store)
    batch = [Run("c", 10.0, "t-1"), Run("a", 10.0, "t-2"), Run("c", 5.0, "t-3"),
             Run("c", 20.0, "t-4"), Run("b", 10.0, "t-5")]
    expected = [batch[0], batch[1], batch[3], batch[4]]  # c@5 is older than c@10
    assert store.claim_runs(holder, batch) == expected
    assert store.get("c").total_run_count == 2  # type: ignore[union-attr]
    assert store.claim_runs(holder, []) == []


def test_confirmed_runs_are_no_longer_unsent(store: ScheduleStore) -> None:
    store.put("a", definition())
    store.put("b", definition())
    holder = leader(store)
    runs = [Run("a", 1.0, "t-1"), Run("b", 1.0, "t-2"), Run("a", 2.0, "t-3")]
    assert store.claim_runs(holder, runs) == runs
    store.confirm_runs([runs[0], runs[2]])
    assert store.unsent_runs() == [runs[1]]
    store.confirm_runs([runs[1]])
    store.confirm_runs([])
    assert store.unsent_runs() == []
    assert {(run.task_id, sent) for run, sent in store.recent_runs()} == {
        ("t-1", True), ("t-2", True), ("t-3", True)}


def test_fire_claims_publishes_once_and_confirms(store: ScheduleStore) -> None:
    store.put("a", definition())
    holder = leader(store)
    published: list[list[Any]] = []
    runs = [Run("a", 1.0, "t-1"), Run("a", 1.0, "t-2"), Run("missing", 1.0, "t-3")]

    def make(claimed: Any, two_step: bool) -> list[Any]:
        assert two_step is True  # no transport shared: claim, publish, confirm
        return [("message", run.task_id) for run in claimed]

    assert store.fire(holder, runs, None, make, published.append) == [runs[0]]
    assert store.fire(holder, runs, None, make, published.append) == []
    assert published == [[("message", "t-1")]]  # nothing published for an empty claim
    assert store.unsent_runs() == []
    assert store.recent_runs("a") == [(runs[0], True)]


def test_recent_runs_newest_first_by_entry_and_limited(store: ScheduleStore) -> None:
    store.put("a", definition())
    store.put("b", definition())
    holder = leader(store)
    runs = [Run("a", 1.0, "a1"), Run("b", 2.0, "b2"), Run("a", 3.0, "a3"), Run("b", 4.0, "b4")]
    assert store.claim_runs(holder, runs) == runs
    store.confirm_runs(runs[:1])
    assert [r.task_id for r, _ in store.recent_runs()] == ["b4", "a3", "b2", "a1"]
    assert store.recent_runs("a") == [(runs[2], False), (runs[0], True)]
    assert [r.task_id for r, _ in store.recent_runs(limit=2)] == ["b4", "a3"]
    assert store.recent_runs("nothing") == []


def test_the_last_hundred_runs_of_an_entry_are_kept(store: ScheduleStore) -> None:
    store.put("a", definition())
    holder = leader(store)
    start = store.now() - 3600  # an hour ago: "a day" may count from either time
    runs = [Run("a", start + i, f"t-{i}") for i in range(1, 151)]
    for start in range(0, 150, 50):
        store.fire(holder, runs[start:start + 50], None, lambda c, _: list(c), lambda m: None)
    assert len(store.recent_runs("a", limit=1000)) == 150  # all younger than a day


# -- across processes -------------------------------------------------------------

def run_driver(scheme: str, url: str, *args: str, stdin: str = "") -> str:
    done = subprocess.run([sys.executable, str(DRIVER), scheme, url, *args], input=stdin,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_wait_for_change_times_out_without_a_change(store: ScheduleStore) -> None:
    store.put("a", definition())
    cursor = store.load()[0]
    assert store.wait_for_change(cursor, 0.3) is False
    assert store.wait_for_change(cursor, 0) is False


def test_wait_for_change_is_woken_by_another_process(store: ScheduleStore, scheme: str,
                                                     store_url: str) -> None:
    cursor = store.load()[0]
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(store.wait_for_change(cursor, 60)))
    waiter.start()
    run_driver(scheme, store_url, "put", "from-afar", definition())
    waiter.join(90)
    assert woke == [True]
    assert names(store.changes(cursor).changed) == ["from-afar"]


def test_wait_for_change_returns_at_once_for_a_stale_cursor(store: ScheduleStore) -> None:
    cursor = store.load()[0]
    store.put("a", definition())
    assert store.wait_for_change(cursor, 60) is True


def _start_driver(scheme: str, url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(DRIVER), scheme, url, *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _race(scheme: str, url: str, holders: tuple[str, str], runs: list[Run], command: str = "claim"
          ) -> tuple[list[str], list[str]]:
    """Two processes claim *runs* as *holders* (or, with command ``take``,
    take them as two sends named by *holders*) at the same moment."""
    text = "".join(f"{r.name} {r.scheduled_at!r} {r.task_id}\n" for r in runs)
    procs = [_start_driver(scheme, url, command, holder, str(seed),
                           *(("50",) if command == "claim" else ()))
             for seed, holder in enumerate(holders)]
    try:
        for proc in procs:  # both have the runs before either starts
            assert proc.stdin is not None
            proc.stdin.write(text)
            proc.stdin.flush()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.close()
        outs = [(proc.stdout.read(), proc.stderr.read())  # type: ignore[union-attr]
                for proc in procs]  # small outputs: no pipe fills up
        for proc in procs:
            proc.wait(timeout=300)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, (_, err) in zip(procs, outs):
        assert proc.returncode == 0, err
    return json.loads(outs[0][0]), json.loads(outs[1][0])


def test_two_processes_racing_claim_each_run_once(store: ScheduleStore, scheme: str,
                                                  store_url: str) -> None:
    store.sync_config({f"e{i:04d}": definition() for i in range(1000)})
    runs = [Run(f"e{i:04d}", 1000.0, uuid.uuid4().hex) for i in range(1000)]
    holder = leader(store, "shared-holder")
    first, second = _race(scheme, store_url, (holder, holder), runs)
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(r.name for r in runs)
    assert sum(e.total_run_count for e in store.load()[1]) == 1000
    assert len(store.unsent_runs()) == 1000


def test_a_process_that_is_not_the_holder_claims_nothing(store: ScheduleStore, scheme: str,
                                                         store_url: str) -> None:
    store.sync_config({f"e{i:03d}": definition() for i in range(100)})
    runs = [Run(f"e{i:03d}", 1000.0, uuid.uuid4().hex) for i in range(100)]
    holder = leader(store, "real-leader")
    claimed, stolen = _race(scheme, store_url, (holder, "impostor"), runs)
    assert sorted(claimed) == sorted(r.name for r in runs) and stolen == []


# -- take_runs: which send's copies of a run a worker runs ----------------------

def claimed_runs(store: ScheduleStore, *names: str, at: float = 10.0) -> list[Run]:
    """One claimed (not confirmed) run of each of *names*."""
    for name in names:
        store.put(name, definition())
    runs = [Run(name, at, f"t-{name}") for name in names]
    assert store.claim_runs(leader(store), runs) == runs
    return runs


def test_the_first_send_to_take_a_run_keeps_it(store: ScheduleStore) -> None:
    (run,) = claimed_runs(store, "a")
    assert take(store, "a", run.scheduled_at, "send-1") is True
    assert take(store, "a", run.scheduled_at, "send-1") is True  # a redelivered copy
    assert take(store, "a", run.scheduled_at, "send-2") is False  # a second copy
    assert take(store, "a", run.scheduled_at, "send-1") is True


def test_runs_are_taken_one_by_one(store: ScheduleStore) -> None:
    first, second = claimed_runs(store, "a", "b")
    assert take(store, "a", 10.0, "send-1") is True
    assert take(store, "b", 10.0, "send-2") is True  # another run: another send may take it
    assert take(store, "a", 10.0, "send-2") is False
    assert take(store, "b", 10.0, "send-1") is False


def test_a_batch_is_taken_in_order(store: ScheduleStore) -> None:
    claimed_runs(store, "a", "b")
    assert store.take_runs([]) == []
    assert store.take_runs([("a", 10.0, "send-1"), ("a", 10.0, "send-2"), ("b", 10.0, "send-2"),
                            ("a", 10.0, "send-1"), ("missing", 10.0, "send-2")]) == [
        True, False, True, True, True]


def test_a_run_the_store_has_no_record_of_is_not_dropped(store: ScheduleStore) -> None:
    claimed_runs(store, "a")
    assert take(store, "a", 99.0, "send-1") is True  # never claimed
    assert take(store, "a", 99.0, "send-2") is True  # nothing was marked
    assert take(store, "nothing", 10.0, "send-1") is True


def test_a_confirmed_run_is_taken_like_an_unsent_one(store: ScheduleStore) -> None:
    runs = claimed_runs(store, "a")
    store.confirm_runs(runs)
    assert take(store, "a", 10.0, "send-2") is True
    assert take(store, "a", 10.0, "send-1") is False


def test_removing_an_entry_drops_its_runs_marks(store: ScheduleStore) -> None:
    claimed_runs(store, "a")
    assert take(store, "a", 10.0, "send-1") is True
    assert store.remove("a")
    claimed_runs(store, "a")  # the same run time again, for the entry added anew
    assert take(store, "a", 10.0, "send-2") is True


@pytest.mark.parametrize("args", [("", 1.0, "s"), (None, 1.0, "s"), ("a", float("nan"), "s"),
                                  ("a", "1.0", "s"), ("a", True, "s"), ("a", 1.0, ""),
                                  ("a", 1.0, None), ("a", 1.0, 7)])
def test_take_run_refuses_bad_arguments(store: ScheduleStore, args: tuple[Any, ...]) -> None:
    with pytest.raises(ValueError, match="name|scheduled_at|send id"):
        take(store, *args)


def test_two_processes_racing_take_each_run_for_one_send(store: ScheduleStore, scheme: str,
                                                         store_url: str) -> None:
    names = [f"e{i:03d}" for i in range(300)]
    store.sync_config({name: definition() for name in names})
    holder = leader(store)
    runs = [Run(name, 1000.25, uuid.uuid4().hex) for name in names]
    assert store.claim_runs(holder, runs) == runs
    first, second = _race(scheme, store_url, ("send-1", "send-2"), runs, command="take")
    assert not set(first) & set(second)
    assert sorted(first + second) == names
    for name in first:  # and what each took stays its own
        assert take(store, name, 1000.25, "send-1") is True
        assert take(store, name, 1000.25, "send-2") is False


# -- rows another program wrote ---------------------------------------------------

def _garbage_sqlite(url: str) -> None:
    import sqlite3

    from corekit.plugins.sqlite.db import path_from_url

    conn = sqlite3.connect(path_from_url(url), isolation_level=None)
    try:
        rows = [("not-json", "{oops", "api", "yesterday", 42, "many", "noon", 1),
                ("nulls", None, None, None, None, None, None, 1),
                ("blob-def", b"\xff\xfe\x00binary", b"config", b"\x00", b"\xff", 2.5, b"x", 1),
                ("not-utf8", "x", "api", 12.0, "t", 3, 1.0, 1)]
        conn.executemany("INSERT INTO corekit_beat_entries (name, definition, source,"
                         " last_run_at, last_task_id, total_run_count, changed_at, version)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("UPDATE corekit_beat_entries SET definition = CAST(X'C328FF' AS TEXT)"
                     " WHERE name = 'not-utf8'")
    finally:
        conn.close()


def _garbage_redis(url: str) -> None:
    """Raw commands on the layout the Redis store documents: one hash per
    field (``corekit:beat:defs``, ``...:count``, ...), keyed by entry name."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        fields = {"not-json": {"defs": "{oops", "source": "api", "last_run": "yesterday",
                               "last_task": "42", "count": "many", "changed_at": "noon"},
                  "nulls": {"defs": ""},
                  "blob-def": {"defs": b"\xff\xfe\x00binary", "source": b"config",
                               "last_run": b"\x00", "last_task": b"\xff", "count": "2.5",
                               "changed_at": b"x"},
                  "not-utf8": {"defs": b"\xc3(\xff", "source": "api", "last_run": "12",
                               "last_task": "t", "count": "3", "changed_at": "1"}}
        for name, values in fields.items():
            for field, value in values.items():
                client.hset(f"corekit:beat:{field}", name, value)
    finally:
        client.close()


def _garbage_django_db(url: str) -> None:
    """Raw SQL on the django-db store's table, in the contract's SQLite file."""
    import sqlite3

    conn = sqlite3.connect(os.environ["COREKIT_CONTRACT_DJANGO"], isolation_level=None)
    try:
        rows = [("not-json", "{oops", "api", "yesterday", 42, "many", "noon"),
                ("nulls", "", "", None, None, 0, 0.0),
                ("blob-def", b"\xff\xfe\x00binary", b"config", b"\x00", b"\xff", 2.5, b"x"),
                ("not-utf8", "x", "api", 12.0, "t", 3, 1.0)]
        conn.executemany(
            "INSERT INTO corekit_periodictask (name, definition, source, last_run_unix,"
            " last_task_id, total_run_count, changed_unix, task, args, kwargs, queue, exchange,"
            " routing_key, headers, options, missed, timezone, enabled, description,"
            " date_changed, version) VALUES (?, ?, ?, ?, ?, ?, ?, '', '', '', '', '', '', '',"
            " '', '', '', 1, '', '2026-01-01', 1)", rows)
        conn.execute("UPDATE corekit_periodictask SET definition = CAST(X'C328FF' AS TEXT)"
                     " WHERE name = 'not-utf8'")
        # columns Django converts on reading a whole row: nothing reads them so
        conn.execute("UPDATE corekit_periodictask SET last_run_at = X'FF', expires = 'soon',"
                     " date_changed = 'noon' WHERE name IN ('not-json', 'nulls')")
    finally:
        conn.close()


#: How each scheme's test writes garbage where its definitions live (the
#: layout is the store's own).
GARBAGE: dict[str, Callable[[str], None]] = {"sqlite": _garbage_sqlite,
                                             "redis": _garbage_redis,
                                             "django-db": _garbage_django_db}


def test_rows_written_wrong_by_another_program_do_not_break_load(
        store: ScheduleStore, scheme: str, store_url: str) -> None:
    if scheme not in GARBAGE:
        pytest.skip(f"no garbage writer for the {scheme} store's layout here; "
                    f"see tests/plugins/{scheme}/test_schedule_store.py")
    store.put("good", definition())
    cursor = store.load()[0]
    GARBAGE[scheme](store_url)
    entries = {e.name: e for e in store.load()[1]}
    assert "good" in entries and len(entries) >= 4
    for entry in entries.values():
        assert isinstance(entry.definition, str) and isinstance(entry.source, str)
        assert entry.last_run_at is None or isinstance(entry.last_run_at, float)
        assert isinstance(entry.total_run_count, int)
        assert isinstance(entry.changed_at, float)
    assert entries["not-json"].definition == "{oops"  # as stored: the beat reports it
    assert entries["not-json"].last_run_at is None
    assert entries["not-json"].total_run_count == 0
    store.changes(cursor - 1)
    store.changes(cursor + 100)
    for name in entries:
        store.get(name)
    # an entry whose run state is unreadable can still be claimed (load says "never ran")
    holder = leader(store)
    assert store.claim_runs(holder, [Run("not-json", 5.0, "t-1")]) == [Run("not-json", 5.0,
                                                                             "t-1")]
    assert store.get("not-json").total_run_count == 1  # type: ignore[union-attr]
    # and such rows can be rewritten from the configuration, and removed
    store.sync_config({"nulls": definition()})
    assert store.get("nulls").definition == definition()  # type: ignore[union-attr]
    assert store.remove("not-json") and store.get("not-json") is None
