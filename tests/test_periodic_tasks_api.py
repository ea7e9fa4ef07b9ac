"""Periodic tasks from Python: ``app.add_periodic_task`` where Celery's docs put
it (``on_after_configure``), the app signals' order, `PeriodicTasks` on a
real SQLite store file, and which store an app's URLs lead to."""
from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest

from corekit import Corekit
from corekit.exceptions import ImproperlyConfigured
from corekit.schedules import crontab, schedule
from corekit.schedules.entry import ScheduleError, entry_from_config
from corekit.schedules.periodic import PeriodicTasks, config_entries, store_url


def make_app(tmp_path: Path, **conf: Any) -> Corekit:
    app = Corekit("proj", broker=f"sqlite://{tmp_path / 'broker.db'}")
    for key, value in conf.items():
        setattr(app.conf, key, value)
    return app


# -- add_periodic_task as in Celery's docs -------------------------------------

def test_add_periodic_task_in_on_after_configure(tmp_path: Path) -> None:
    app = make_app(tmp_path)

    @app.on_after_configure.connect
    def setup_periodic_tasks(sender: Corekit, **kwargs: Any) -> None:
        sender.add_periodic_task(10.0, test.s("hello"), name="add every 10")
        sender.add_periodic_task(30.0, test.s("world"), expires=10)
        sender.add_periodic_task(crontab(hour=7, minute=30, day_of_week=1),
                                 test.s("Happy Mondays!"))

    @app.task
    def test(arg: str) -> str:  # defined after the handler, as in Celery's docs
        return arg

    entries = config_entries(app)
    assert entries["add every 10"].task == test.name
    assert entries["add every 10"].args == ("hello",)
    assert entries["add every 10"].schedule == schedule(10)
    world = entries[repr(test.s("world"))]
    assert world.options == {"expires": 10} and world.schedule == schedule(30)
    mondays = entries[repr(test.s("Happy Mondays!"))]
    assert mondays.schedule == crontab(hour=7, minute=30, day_of_week=1)


def test_args_kwargs_and_options_merge_into_the_signature(tmp_path: Path) -> None:
    app = make_app(tmp_path)

    @app.task
    def add(x: int, y: int, z: int = 0) -> int:
        return x + y + z

    sig = add.s(2, z=1).set(queue="hipri", priority=3)
    name = app.add_periodic_task(timedelta(seconds=5), sig, args=(1,), kwargs={"z": 9},
                                 priority=7)
    assert name == repr(add.s(1, 2, z=9).set(queue="hipri", priority=3))
    entry = config_entries(app)[name]
    assert entry.args == (1, 2)  # Celery's clone: given args come first
    assert entry.kwargs == {"z": 9}
    assert entry.options == {"queue": "hipri", "priority": 7}


def test_a_task_itself_is_taken_as_its_signature(tmp_path: Path) -> None:
    app = make_app(tmp_path)

    @app.task(name="proj.ping")
    def ping() -> str:
        return "pong"

    name = app.add_periodic_task(60, ping, name="ping")
    assert name == "ping"
    assert config_entries(app)["ping"].task == "proj.ping"


def test_the_same_name_again_replaces_the_entry(tmp_path: Path) -> None:
    app = make_app(tmp_path)

    @app.task(name="proj.ping")
    def ping() -> str:
        return "pong"

    app.add_periodic_task(60, ping.s(), name="ping")
    app.add_periodic_task(5, ping.s(), name="ping")
    assert config_entries(app)["ping"].schedule == schedule(5)


def test_add_periodic_task_keeps_beat_schedule_entries(tmp_path: Path) -> None:
    app = make_app(tmp_path, beat_schedule={"cfg": {"task": "proj.x", "schedule": 3}})
    app.add_periodic_task(7, app.signature("proj.y"), name="api")
    assert sorted(config_entries(app)) == ["api", "cfg"]


def test_a_bad_entry_is_refused_at_once_naming_it(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with pytest.raises(ScheduleError, match=r"'bad'.*schedule"):
        app.add_periodic_task("*/5 * * * *", app.signature("proj.x"), name="bad")
    with pytest.raises(ScheduleError, match=r"'bad'.*cannot be stored as JSON"):
        app.add_periodic_task(5, app.signature("proj.x", args=(object(),)), name="bad")
    assert not app.conf.beat_schedule


def test_a_bad_entry_added_in_on_after_configure_is_not_lost(tmp_path: Path) -> None:
    # a signal logs what its receivers raise; a bad periodic task must still stop the beat
    app = make_app(tmp_path)

    @app.on_after_configure.connect
    def setup(sender: Corekit, **kwargs: Any) -> None:
        sender.add_periodic_task(5, sender.signature("proj.x", kwargs={1: 2}), name="bad")

    with pytest.raises(ScheduleError, match=r"'bad'.*kwargs"):
        config_entries(app)


def test_on_after_configure_comes_before_include_and_on_after_finalize_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = "h6_periodic_included_tasks"
    (tmp_path / f"{module}.py").write_text(
        "import h6_periodic_order\nh6_periodic_order.seen.append('include imported')\n")
    order_module = type(sys)("h6_periodic_order")
    order_module.seen = []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "h6_periodic_order", order_module)
    monkeypatch.syspath_prepend(str(tmp_path))
    app = make_app(tmp_path, include=[module])
    seen: list[str] = order_module.seen  # type: ignore[attr-defined]

    @app.on_after_finalize.connect
    def after_finalize(sender: Corekit, **kwargs: Any) -> None:
        seen.append("finalize")

    @app.on_after_configure.connect
    def after_configure(sender: Corekit, source: Any, **kwargs: Any) -> None:
        assert source is sender.conf
        seen.append("configure")

    app.finalize()
    app.finalize()  # once only
    assert seen == ["configure", "include imported", "finalize"]


# -- PeriodicTasks on a SQLite store ---------------------------------------------

@pytest.fixture
def tasks(tmp_path: Path) -> Iterator[PeriodicTasks]:
    with PeriodicTasks(make_app(tmp_path)) as periodic:
        yield periodic


def test_add_list_get_remove(tasks: PeriodicTasks) -> None:
    tasks.add("nightly", "proj.report", crontab(hour=2, minute=30), args=[1],
              kwargs={"k": "v"}, options={"queue": "reports"}, missed="all",
              tz="Europe/Paris")
    tasks.add("often", "proj.tick", 5)
    assert [row.name for row in tasks.list()] == ["nightly", "often"]
    row = tasks.get("nightly")
    assert row is not None and row.error is None and row.source == "api"
    assert row.entry is not None
    assert (row.entry.task, row.entry.args, row.entry.kwargs) == ("proj.report", (1,),
                                                                  {"k": "v"})
    assert (row.entry.options, row.entry.missed, row.entry.tz) == (
        {"queue": "reports"}, "all", "Europe/Paris")
    assert (row.last_run_at, row.total_run_count) == (None, 0)
    assert row.next_run_at is not None and row.next_run_at > tasks.store.now()
    assert tasks.remove("nightly") is True
    assert tasks.remove("nightly") is False
    assert tasks.get("nightly") is None
    assert [row.name for row in tasks.list()] == ["often"]


def test_add_refuses_an_existing_name_unless_replace(tasks: PeriodicTasks) -> None:
    tasks.add("often", "proj.tick", 5)
    with pytest.raises(ScheduleError, match="'often' exists"):
        tasks.add("often", "proj.other", 10)
    assert tasks.get("often").entry.task == "proj.tick"  # type: ignore[union-attr]
    tasks.add("often", "proj.other", 10, replace=True)
    assert tasks.get("often").entry.task == "proj.other"  # type: ignore[union-attr]


def test_add_checks_the_entry_before_writing(tasks: PeriodicTasks) -> None:
    with pytest.raises(ScheduleError, match=r"'x'.*missed"):
        tasks.add("x", "proj.tick", 5, missed="sometimes")
    with pytest.raises(ScheduleError, match=r"'x'.*JSON"):
        tasks.add("x", "proj.tick", 5, args=[object()])
    assert tasks.list() == []


def test_enable_and_disable(tasks: PeriodicTasks) -> None:
    tasks.add("often", "proj.tick", 5, enabled=False)
    row = tasks.get("often")
    assert row is not None and row.next_run_at is None and not row.entry.enabled  # type: ignore[union-attr]
    assert tasks.enable("often").enabled is True
    row = tasks.get("often")
    assert row is not None and row.entry.enabled and row.next_run_at is not None  # type: ignore[union-attr]
    assert tasks.disable("often").enabled is False
    for change in (tasks.enable, tasks.disable):
        with pytest.raises(ScheduleError, match="no periodic task called 'missing'"):
            change("missing")


def test_a_bad_stored_row_is_listed_with_its_error(tasks: PeriodicTasks) -> None:
    tasks.store.put("broken", '{"task": "t", "schedule": {"type": "weekly"}}', "api")
    tasks.add("fine", "proj.tick", 5)
    rows = {row.name: row for row in tasks.list()}
    assert rows["broken"].entry is None and "weekly" in str(rows["broken"].error)
    assert rows["broken"].next_run_at is None
    assert rows["fine"].error is None
    with pytest.raises(ScheduleError, match="'broken'"):
        tasks.enable("broken")
    assert tasks.remove("broken") is True


def restart(tmp_path: Path, beat_schedule: dict[str, Any]) -> PeriodicTasks:
    """A new app process: same store file, maybe another beat_schedule; synced."""
    tasks = PeriodicTasks(make_app(tmp_path, beat_schedule=beat_schedule))
    tasks.sync_config()
    return tasks


CONFIG = {"cfg": {"task": "proj.tick", "schedule": 5.0},
          "gone-later": {"task": "proj.tick", "schedule": 9.0}}


def test_sync_config_keeps_an_operators_disable_across_restarts(tmp_path: Path) -> None:
    with restart(tmp_path, CONFIG) as tasks:
        assert {row.name: row.source for row in tasks.list()} == {
            "cfg": "config", "gone-later": "config"}
        tasks.disable("cfg")
    with restart(tmp_path, CONFIG) as tasks:  # the same config: the disable stays
        row = tasks.get("cfg")
        assert row is not None and row.entry is not None and row.entry.enabled is False
    changed = {**CONFIG, "cfg": {"task": "proj.tick", "schedule": 7.0}}
    with restart(tmp_path, changed) as tasks:  # the config changed: it wins
        row = tasks.get("cfg")
        assert row is not None and row.entry is not None
        assert row.entry.enabled is True and row.entry.schedule == schedule(7)


def test_an_operators_enable_of_a_config_disabled_entry_stays_until_the_config_changes(
        tmp_path: Path) -> None:
    off = {"cfg": {"task": "proj.tick", "schedule": 5.0, "enabled": False}}
    with restart(tmp_path, off) as tasks:
        tasks.enable("cfg")
    with restart(tmp_path, off) as tasks:
        assert tasks.get("cfg").entry.enabled is True  # type: ignore[union-attr]
    still_off = {"cfg": {"task": "proj.tick", "schedule": 6.0, "enabled": False}}
    with restart(tmp_path, still_off) as tasks:
        assert tasks.get("cfg").entry.enabled is False  # type: ignore[union-attr]


def test_config_entries_removed_from_beat_schedule_disappear_api_entries_stay(
        tmp_path: Path) -> None:
    with restart(tmp_path, CONFIG) as tasks:
        tasks.add("from-api", "proj.tick", 3)
    with restart(tmp_path, {"cfg": CONFIG["cfg"]}) as tasks:
        assert {row.name: row.source for row in tasks.list()} == {
            "cfg": "config", "from-api": "api"}
    with restart(tmp_path, {}) as tasks:
        assert [row.name for row in tasks.list()] == ["from-api"]


def test_a_config_entry_named_like_an_api_entry_takes_it_over(tmp_path: Path) -> None:
    with restart(tmp_path, {}) as tasks:
        tasks.add("cfg", "proj.other", 3)
    with restart(tmp_path, CONFIG) as tasks:
        row = tasks.get("cfg")
        assert row is not None and row.source == "config"
        assert row.entry.task == "proj.tick"  # type: ignore[union-attr]


def test_sync_config_refuses_a_bad_entry_naming_it_and_writes_nothing(tmp_path: Path) -> None:
    bad = {**CONFIG, "broken": {"task": "proj.tick", "schedule": crontab(minute=5),
                                "tz": "Nowhere/Town"}}
    tasks = PeriodicTasks(make_app(tmp_path, beat_schedule=bad))
    with tasks, pytest.raises(ScheduleError, match=r"'broken': tz"):
        tasks.sync_config()
    with restart(tmp_path, {}) as tasks:
        assert tasks.list() == []


def test_beat_schedule_that_is_not_a_dict(tmp_path: Path) -> None:
    app = make_app(tmp_path, beat_schedule=[("x", {"task": "t", "schedule": 1})])
    with pytest.raises((ScheduleError, ImproperlyConfigured), match="beat_schedule"):
        config_entries(app)


# -- which store -----------------------------------------------------------------

def test_store_url_is_the_brokers_when_it_has_a_store(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    assert store_url(app) == f"sqlite://{tmp_path / 'broker.db'}"
    app = Corekit("proj", broker="redis://127.0.0.1:1/3", backend="rpc://")
    assert store_url(app) == "redis://127.0.0.1:1/3"


def test_an_amqp_broker_uses_the_result_backends_store(tmp_path: Path) -> None:
    backend = f"sqlite://{tmp_path / 'results.db'}"
    app = Corekit("proj", broker="amqp://guest@127.0.0.1:1//", backend=backend)
    assert store_url(app) == backend
    with PeriodicTasks(app) as tasks:
        tasks.add("x", "proj.tick", 5)
        assert [row.name for row in tasks.list()] == ["x"]
    assert (tmp_path / "results.db").exists()


def test_neither_broker_nor_backend_with_a_store_is_a_clear_error() -> None:
    app = Corekit("proj", broker="amqp://guest@127.0.0.1:1//", backend="rpc://")
    with pytest.raises(ImproperlyConfigured) as info:
        store_url(app)
    message = str(info.value)
    assert "beat_store_url" in message and "amqp://" in message and "sqlite" in message
    assert "\n" not in message


def test_an_explicit_store_url_wins(tmp_path: Path) -> None:
    explicit = f"sqlite://{tmp_path / 'schedule.db'}"
    app = make_app(tmp_path, beat_store_url=explicit)
    assert store_url(app) == explicit


@pytest.mark.parametrize("url", ["mongodb://db/beat", "amqp://127.0.0.1//", "schedule.db",
                                 "SQLITE:///tmp/x.db"])
def test_an_explicit_store_url_nobody_serves_lists_the_stores(tmp_path: Path,
                                                               url: str) -> None:
    app = make_app(tmp_path, beat_store_url=url)
    with pytest.raises(ImproperlyConfigured) as info:
        store_url(app)
    message = str(info.value)
    assert "beat_store_url" in message and "redis" in message and "sqlite" in message


# -- send options ----------------------------------------------------------------

def test_an_option_send_task_refuses_is_a_config_error_naming_the_entry(tmp_path: Path) -> None:
    # a typo such as 'expire' would make every beat skip the entry at start
    app = make_app(tmp_path)
    app.add_periodic_task(10, app.signature("proj.x"), name="typo", expire=10)
    with pytest.raises(ScheduleError, match=r"'typo': options: .*expire"):
        config_entries(app)


def test_known_options_pass(tmp_path: Path) -> None:
    app = make_app(tmp_path, beat_schedule={"ok": {
        "task": "proj.x", "schedule": 10,
        "options": {"queue": "hipri", "expires": 25, "priority": 5, "countdown": 1}}})
    assert config_entries(app)["ok"].options["queue"] == "hipri"


def test_add_refuses_an_option_send_task_refuses(tasks: PeriodicTasks) -> None:
    with pytest.raises(ScheduleError, match=r"'typo': options: .*expire"):
        tasks.add("typo", "proj.tick", 5, options={"expire": 10})
    assert tasks.get("typo") is None


# -- the app's timezone ------------------------------------------------------------

def test_a_mistyped_app_timezone_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    # the beat used to take it for a store outage and fire nothing
    app = make_app(tmp_path, timezone="Europe/Lodnon",
                   beat_schedule={"often": {"task": "proj.x", "schedule": 5}})
    with pytest.raises(ImproperlyConfigured, match=r"^timezone 'Europe/Lodnon': .*IANA"):
        config_entries(app)
    with PeriodicTasks(app) as tasks:
        with pytest.raises(ImproperlyConfigured, match=r"^timezone 'Europe/Lodnon'"):
            tasks.add("x", "proj.x", crontab())
        tasks.store.put("x", entry_from_config("x", {"task": "proj.x", "schedule": crontab()}
                                               ).to_json())
        with pytest.raises(ImproperlyConfigured, match=r"^timezone 'Europe/Lodnon'"):
            tasks.list()


def test_an_app_timezone_moves_crontab_runs(tmp_path: Path) -> None:
    app = make_app(tmp_path, timezone="Asia/Tokyo")
    with PeriodicTasks(app) as tasks:
        tasks.add("x", "proj.x", crontab(hour=9, minute=0))
        row = tasks.get("x")
        assert row is not None and row.next_run_at is not None
        from datetime import datetime
        from zoneinfo import ZoneInfo

        when = datetime.fromtimestamp(row.next_run_at, ZoneInfo("Asia/Tokyo"))
        assert (when.hour, when.minute) == (9, 0)
        assert "Asia/Tokyo" in row.schedule_text
