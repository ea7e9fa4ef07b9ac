"""``corekit beat list|add|remove|enable|disable`` and ``corekit beat`` as a user
types them, on a SQLite broker file: every schedule flag, ``--json``, errors as
one ``Error:`` line with exit status 1, usage errors with exit status 2."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from helpers import ROOT, run_cli

PROJ = '''
import os
from corekit import Corekit
app = Corekit("proj", broker=os.environ["TEST_BROKER"])
app.conf.timezone = os.environ.get("TEST_TIMEZONE") or None

@app.task
def tick(*args, **kwargs):
    return args
'''


class Project:
    """A ``proj`` module in a directory, its broker file, and the CLI run there."""

    def __init__(self, path: Path, timezone: str | None = None) -> None:
        self.path = path
        (path / "proj.py").write_text(PROJ)
        self.env = {"PYTHONPATH": os.pathsep.join([str(path), str(ROOT)]),
                    "TEST_BROKER": f"sqlite://{path / 'broker.db'}",
                    "TEST_TIMEZONE": timezone or ""}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("-A", "proj", *args, cwd=self.path, env=self.env)

    def ok(self, *args: str) -> str:
        out = self.run(*args)
        assert out.returncode == 0, (args, out.stdout, out.stderr)
        return out.stdout

    def rows(self) -> dict[str, dict[str, Any]]:
        """``beat list --json``, by name."""
        lines = self.ok("beat", "list", "--json").splitlines()
        return {row["name"]: row for row in map(json.loads, lines)}

    def stored(self, name: str) -> Any:
        """The definition the store holds for *name*, as JSON."""
        from corekit import Corekit
        from corekit.schedules.periodic import PeriodicTasks

        with PeriodicTasks(Corekit("proj", broker=self.env["TEST_BROKER"])) as tasks:
            entry = tasks.store.get(name)
        return None if entry is None else json.loads(entry.definition)

    def error(self, *args: str) -> str:
        """The one ``Error:`` line of a command that must fail with status 1."""
        out = self.run(*args)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), out.stderr
        assert "Traceback" not in out.stderr
        return lines[0]

    def usage_error(self, *args: str) -> str:
        out = self.run(*args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert out.stderr.startswith("usage: corekit"), out.stderr
        assert "Traceback" not in out.stderr
        return out.stderr.strip().splitlines()[-1]


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    return Project(tmp_path)


# -- adding with each schedule flag -----------------------------------------------

def test_add_every_and_list(proj: Project) -> None:
    assert proj.ok("beat", "add", "often", "proj.tick", "--every", "2.5") == (
        "added often: proj.tick <freq: 0:00:02.500000>\n")
    row = proj.rows()["often"]
    assert row["task"] == "proj.tick" and row["enabled"] is True and row["source"] == "api"
    assert row["schedule"] == "<freq: 0:00:02.500000>" and row["error"] is None
    assert isinstance(row["next_run_at"], float)
    assert (row["last_run_at"], row["last_task_id"], row["total_run_count"]) == (None, None, 0)
    table = proj.ok("beat", "list").splitlines()
    assert table[0] == "leader: none; 1 periodic task(s)"
    assert table[1].split() == ["NAME", "TASK", "SCHEDULE", "ON", "NEXT", "RUN", "(UTC)",
                                "LAST", "RUN", "(UTC)", "RUNS"]
    assert table[2].startswith("often") and " yes " in table[2] and table[2].endswith(" 0")


def test_add_cron_with_args_kwargs_options_tz_missed(proj: Project) -> None:
    added = proj.ok("beat", "add", "workdays", "proj.tick", "--cron", "*/15 9-17 * jan-jun mon-fri",
            "-a", '[1, "two"]', "-k", '{"k": 3}', "-o", '{"queue": "hipri"}',
            "--tz", "Europe/Paris", "--missed", "all")
    assert added == ("added workdays: proj.tick <crontab: */15 9-17 * jan-jun mon-fri "
                     "(m/h/dM/MY/d) Europe/Paris>\n")
    row = proj.rows()["workdays"]
    assert "*/15 9-17 * jan-jun mon-fri" in row["schedule"]
    assert "Europe/Paris" in row["schedule"], row["schedule"]  # the zone it runs in
    assert proj.stored("workdays") == {
        "task": "proj.tick", "args": [1, "two"], "kwargs": {"k": 3},
        "options": {"queue": "hipri"}, "tz": "Europe/Paris", "missed": "all", "enabled": True,
        "schedule": {"type": "crontab", "minute": "*/15", "hour": "9-17", "day_of_month": "*",
                     "month_of_year": "jan-jun", "day_of_week": "mon-fri", "tz": None}}


def test_list_shows_the_zone_a_crontab_runs_in(tmp_path: Path) -> None:
    proj = Project(tmp_path, timezone="Asia/Tokyo")
    proj.ok("beat", "add", "app-zone", "proj.tick", "--cron", "30 2 * * *")
    proj.ok("beat", "add", "own-zone", "proj.tick", "--cron", "30 2 * * *",
            "--tz", "America/New_York")
    rows = proj.rows()
    assert "Asia/Tokyo" in rows["app-zone"]["schedule"]
    assert "America/New_York" in rows["own-zone"]["schedule"]
    assert "UTC" not in rows["app-zone"]["schedule"] + rows["own-zone"]["schedule"]


def test_add_at_and_solar(proj: Project) -> None:
    proj.ok("beat", "add", "once", "proj.tick", "--at", "2030-01-01T09:00:00+01:00")
    proj.ok("beat", "add", "naive", "proj.tick", "--at", "2030-01-01T09:00:00")
    proj.ok("beat", "add", "dawn", "proj.tick", "--solar", "sunrise", "51.5", "-0.12")
    rows = proj.rows()
    assert rows["once"]["next_run_at"] == 1893484800.0  # 08:00 UTC
    assert rows["naive"]["next_run_at"] == 1893488400.0  # naive means UTC
    assert rows["dawn"]["schedule"].startswith("<solar: sunrise")
    assert rows["dawn"]["next_run_at"] is not None


def test_add_disabled_then_enable_disable_remove(proj: Project) -> None:
    proj.ok("beat", "add", "off", "proj.tick", "--every", "5", "--disabled")
    row = proj.rows()["off"]
    assert row["enabled"] is False and row["next_run_at"] is None
    assert proj.ok("beat", "enable", "off") == "enabled off\n"
    assert proj.rows()["off"]["enabled"] is True
    assert proj.ok("beat", "disable", "off") == "disabled off\n"
    assert proj.rows()["off"]["enabled"] is False
    assert proj.ok("beat", "remove", "off") == "removed off\n"
    assert proj.rows() == {}
    assert proj.ok("beat", "list") == "leader: none; 0 periodic task(s)\n"


def test_a_duplicate_add_needs_replace(proj: Project) -> None:
    proj.ok("beat", "add", "x", "proj.tick", "--every", "5")
    line = proj.error("beat", "add", "x", "proj.tick", "--every", "7")
    assert line == "Error: periodic task 'x' exists (remove it first, or replace it)"
    assert proj.rows()["x"]["schedule"] == "<freq: 0:00:05>"
    proj.ok("beat", "add", "x", "proj.other", "--every", "7", "--replace")
    assert proj.rows()["x"]["task"] == "proj.other"


def test_an_unknown_task_name_is_allowed(proj: Project) -> None:
    proj.ok("beat", "add", "elsewhere", "other_project.tasks.report", "--every", "60")
    assert proj.rows()["elsewhere"]["task"] == "other_project.tasks.report"


def test_app_flags_may_come_after_the_subcommand(proj: Project) -> None:
    out = run_cli("beat", "add", "x", "proj.tick", "--every", "5", "-A", "proj",
                  cwd=proj.path, env=proj.env)
    assert out.returncode == 0, out.stderr
    assert "x" in proj.rows()


# -- errors: one line, exit 1 ---------------------------------------------------------

@pytest.mark.parametrize("cron, words", [
    ("* * *", "--cron '* * *': needs 5 fields (minute hour day-of-month month day-of-week), "
              "got 3"),
    ("* * * * * *", "needs 5 fields"),
    ("", "needs 5 fields"),
    ("61 * * * *", "crontab minute '61': out of range 0-59"),
    ("* 24 * * *", "crontab hour '24'"),
    ("* * 32 * *", "crontab day_of_month '32'"),
    ("* * * 13 *", "crontab month_of_year '13'"),
    ("* * * * funday", "crontab day_of_week 'funday'"),
    ("*/0 * * * *", "crontab minute"),
    ("* * 30 feb *", "never occurs"),
])
def test_a_bad_cron_names_the_field(proj: Project, cron: str, words: str) -> None:
    line = proj.error("beat", "add", "nightly", "proj.tick", "--cron", cron)
    assert line.startswith("Error: periodic task 'nightly': "), line
    assert words in line, line
    assert proj.rows() == {}


@pytest.mark.parametrize("flags, words", [
    (["--every", "0"], "more than 0 seconds"),
    (["--every", "-5"], "more than 0 seconds"),
    (["--every", "nan"], "more than 0 seconds"),
    (["--every", "inf"], "finite"),
    (["--every", "5", "--tz", "Mars/Olympus"], "tz: "),
    (["--cron", "0 2 * * *", "--tz", "Europe/Lodnon"], "tz: "),
    (["--solar", "moonrise", "1", "0"], "solar event 'moonrise'"),
    (["--solar", "sunrise", "91", "0"], "solar lat 91.0"),
    (["--solar", "sunrise", "north", "0"], "--solar LAT 'north': must be a number"),
    (["--solar", "sunrise", "0", "east"], "--solar LON 'east': must be a number"),
    (["--every", "5", "-a", '[{"__type__": "datetime", "__value__": "x"}]'],
     "cannot be stored as JSON"),
    (["--every", "5", "-o", '{"expire": 10}'], "options: send_task() got unknown option(s): "
                                              "expire"),
])
def test_bad_values_are_one_error_line(proj: Project, flags: list[str], words: str) -> None:
    line = proj.error("beat", "add", "nightly", "proj.tick", *flags)
    assert "'nightly'" in line and words in line, line
    assert proj.rows() == {}


def test_a_bad_name_is_one_error_line(proj: Project) -> None:
    assert "periodic task name ''" in proj.error("beat", "add", "", "proj.tick", "--every", "5")
    assert "periodic task name" in proj.error("beat", "add", "n" * 201, "proj.tick", "--every",
                                              "5")


@pytest.mark.parametrize("command", ["remove", "enable", "disable"])
def test_an_unknown_name(proj: Project, command: str) -> None:
    assert proj.error("beat", command, "nope") == "Error: no periodic task called 'nope'"


def test_a_broken_stored_row_is_listed_and_can_be_removed(proj: Project) -> None:
    from corekit import Corekit
    from corekit.schedules.periodic import PeriodicTasks

    with PeriodicTasks(Corekit("proj", broker=proj.env["TEST_BROKER"])) as tasks:
        tasks.store.put("x", "{not json", "api")  # as another program might write it
    row = proj.rows()["x"]
    assert row["task"] is None and "not JSON" in row["error"] and row["enabled"] is False
    assert "(bad: " in proj.ok("beat", "list")
    assert "'x'" in proj.error("beat", "enable", "x")
    proj.ok("beat", "remove", "x")


def test_no_store_for_the_broker_is_one_error_line(proj: Project) -> None:
    proj.env["TEST_BROKER"] = "amqp://guest@127.0.0.1:1//"
    line = proj.run("--result-backend", "rpc://", "beat", "list")
    assert line.returncode == 1 and line.stderr.startswith("Error: "), line.stderr
    assert "beat_store_url" in line.stderr and len(line.stderr.strip().splitlines()) == 1


# -- usage errors: exit 2 -------------------------------------------------------------

@pytest.mark.parametrize("flags, words", [
    ([], "one of the arguments --every --cron --at --solar is required"),
    (["--every", "5", "--cron", "* * * * *"], "not allowed with argument"),
    (["--every", "five"], "argument --every: invalid float value: 'five'"),
    (["--every", "5", "--missed", "twice"], "argument --missed: invalid choice: 'twice'"),
    (["--every", "5", "--args", "[1,"], "argument -a/--args: --args must be JSON"),
    (["--every", "5", "--args", '{"a": 1}'], "--args must be a JSON list"),
    (["--every", "5", "--kwargs", "[1]"], "--kwargs must be a JSON dict"),
    (["--every", "5", "--options", "hipri"], "--options must be JSON"),
    (["--at", "tomorrow"], "argument --at: 'tomorrow' is not an ISO-8601 time"),
    (["--solar", "sunrise", "1"], "argument --solar: expected 3 arguments"),
    (["--every", "5", "--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_bad_flags_are_usage_errors(proj: Project, flags: list[str], words: str) -> None:
    assert words in proj.usage_error("beat", "add", "nightly", "proj.tick", *flags)


def test_bad_subcommands_are_usage_errors(proj: Project) -> None:
    assert "invalid choice: 'frobnicate'" in proj.usage_error("beat", "frobnicate")
    assert "required: name" in proj.usage_error("beat", "remove")
    assert "required: name, task" in proj.usage_error("beat", "add")
    assert "unrecognized arguments: extra" in proj.usage_error("beat", "enable", "x", "extra")
    assert "invalid choice: 'twice'" in proj.usage_error("beat", "--missed", "twice")


# -- corekit beat itself ---------------------------------------------------------------

BAD_SCHEDULES = {
    "missed": ('{"task": "proj.tick", "schedule": 5, "missed": "twice"}',
               "Error: periodic task 'nightly': missed: 'twice' is not one of once, all, none"),
    "cron": ('{"task": "proj.tick", "schedule": crontab(minute="0", hour="25")}',
             "Error: periodic task 'nightly': crontab hour '25'"),
    "type": ('{"task": "proj.tick", "schedule": "0 2 * * *"}',
             "Error: periodic task 'nightly': schedule: unsupported schedule type str"),
    "key": ('{"task": "proj.tick", "schedule": 5, "kwarg": {}}',
            "Error: periodic task 'nightly': unknown key 'kwarg'"),
    "task": ('{"schedule": 5}', "Error: periodic task 'nightly': task: missing"),
    "option": ('{"task": "proj.tick", "schedule": 5, "options": {"expire": 10}}',
               "Error: periodic task 'nightly': options: "),
}


@pytest.mark.parametrize("kind", sorted(BAD_SCHEDULES))
def test_a_beat_with_a_bad_beat_schedule_entry_stops_naming_it(proj: Project,
                                                                kind: str) -> None:
    item, expected = BAD_SCHEDULES[kind]
    (proj.path / "proj.py").write_text(
        PROJ + "from corekit.schedules import crontab\n"
               f"app.conf.beat_schedule = {{'ok': {{'task': 'proj.tick', 'schedule': 5}}, "
               f"'nightly': {item}}}\n")
    out = proj.run("beat")
    assert out.returncode == 1, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    if kind == "cron":  # raised where the module builds the crontab: the app does not load
        assert lines[-1].startswith("Error: ") and "hour '25'" in lines[-1], out.stderr
        return
    assert lines == [lines[0]] and lines[0].startswith(expected), out.stderr
    assert proj.rows() == {}  # nothing was synced


def test_a_bad_add_periodic_task_in_on_after_configure_stops_the_beat(proj: Project) -> None:
    (proj.path / "proj.py").write_text(PROJ + '''
@app.on_after_configure.connect
def setup(sender, **kwargs):
    sender.add_periodic_task(5, tick.s(object()), name="nightly")
''')
    out = proj.run("beat")
    assert out.returncode == 1, (out.stdout, out.stderr)
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: periodic task 'nightly': ") and "JSON" in last, out.stderr


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def run_beat_until(proj: Project, name: str, runs: int) -> str:
    """Run ``corekit beat`` until entry *name* has *runs* runs; stop it with
    SIGTERM and return its output."""
    log = proj.path / "beat.log"
    with open(log, "w") as out:
        beat = subprocess.Popen([sys.executable, "-m", "corekit", "-A", "proj", "beat"],
                                cwd=proj.path, env={**os.environ, **proj.env}, stdout=out,
                                stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: proj.rows().get(name, {}).get("total_run_count", 0) >= runs
                 or beat.poll() is not None, f"{runs} runs of {name}")
        assert beat.poll() is None, log.read_text()
        beat.send_signal(signal.SIGTERM)
        assert beat.wait(timeout=60) == 0, log.read_text()
    finally:
        if beat.poll() is None:
            beat.kill()
            beat.wait()
    return log.read_text()


def test_a_beat_fires_an_unknown_task_and_warns_once(proj: Project) -> None:
    (proj.path / "proj.py").write_text(PROJ + '''
app.conf.beat_schedule = {"elsewhere": {"task": "other.report", "schedule": 0.2}}
''')
    text = run_beat_until(proj, "elsewhere", 3)
    assert text.count("'other.report'") == 1, text
    assert "not registered here" in text
    assert proj.rows()["elsewhere"]["source"] == "config"


@pytest.mark.parametrize("last_run_at", [1e20, -1e20, 1e300])
def test_a_run_time_no_date_can_show_does_not_break_the_listing(proj: Project,
                                                                 last_run_at: float) -> None:
    import sqlite3

    proj.ok("beat", "add", "every", "proj.tick", "--every", "5")
    proj.ok("beat", "add", "cron", "proj.tick", "--cron", "0 2 * * *")
    proj.ok("beat", "add", "fine", "proj.tick", "--every", "7")
    with sqlite3.connect(proj.path / "broker.db") as db:  # as another program might write it
        db.execute("update corekit_beat_entries set last_run_at = ? where name != 'fine'",
                   (last_run_at,))
    table = proj.ok("beat", "list")
    assert "fine" in table and "every" in table and "cron" in table
    rows = proj.rows()
    assert rows["fine"]["next_run_at"] is not None
    assert rows["cron"]["last_run_at"] == last_run_at


def test_a_beat_keeps_firing_beside_a_row_with_an_impossible_last_run(proj: Project) -> None:
    # the leader used to take the row's OverflowError for a store outage, forever
    import sqlite3

    proj.ok("beat", "add", "cron", "proj.tick", "--cron", "* * * * *")
    proj.ok("beat", "add", "often", "proj.tick", "--every", "0.2")
    with sqlite3.connect(proj.path / "broker.db") as db:
        db.execute("update corekit_beat_entries set last_run_at = 1e300 where name = 'cron'")
    text = run_beat_until(proj, "often", 3)
    assert "unreachable" not in text, text


def test_a_mistyped_app_timezone_stops_the_beat_naming_the_setting(tmp_path: Path) -> None:
    proj = Project(tmp_path, timezone="Europe/Lodnon")
    (proj.path / "proj.py").write_text(PROJ + '''
app.conf.beat_schedule = {"often": {"task": "proj.tick", "schedule": 5}}
''')
    out = proj.run("beat")
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert out.stderr.strip().splitlines() == [
        "Error: timezone 'Europe/Lodnon': unknown time zone; use an IANA name such as "
        "'Europe/London'"], out.stderr
