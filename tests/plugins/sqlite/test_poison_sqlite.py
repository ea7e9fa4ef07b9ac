"""Poison rows in the SQLite broker: a row that some other producer (the
sqlite3 shell, a program in another language, a hand edit) wrote with a
value corekit cannot turn into a message is dead-lettered alone, with its
reason, and never stops the fetches of anyone else."""
from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corekit import Corekit
from corekit.messages import build_message, task_body, task_headers
from corekit.pluginmanager import default_manager
from corekit.testing import start_worker
from helpers import run_cli


class SQL:
    """A column value written as an SQL expression, e.g. text that is not UTF-8."""

    def __init__(self, expr: str, param: Any) -> None:
        self.expr, self.param = expr, param

    def __repr__(self) -> str:
        return f"SQL({self.expr!r}, {self.param!r})"


def not_utf8_text(data: bytes = b"\xff\xfe") -> SQL:
    return SQL("CAST(? AS TEXT)", data)


def good_row(task_id: str, args: list[Any], queue: str = "celery") -> dict[str, Any]:
    """The columns a corekit producer writes for ``echo(*args)``."""
    headers = task_headers("echo", task_id, args, {})
    m = build_message(headers, json.dumps(task_body(args, {})).encode(), "application/json",
                      "utf-8", None, queue=queue)
    return {"queue": m.queue, "priority": 0, "headers": json.dumps(m.headers),
            "properties": json.dumps(m.properties), "content_type": m.content_type,
            "content_encoding": m.content_encoding, "exchange": m.exchange,
            "routing_key": m.routing_key, "body": m.body, "eta": None, "redelivered": 0}


def insert(path: Path, row: dict[str, Any], returning: str = "id") -> Any:
    """Write *row* as a foreign producer would: plain SQL on its own
    connection.  The *returning* expression of the stored row."""
    names, exprs, params = [], [], []
    for name, value in row.items():
        names.append(name)
        if isinstance(value, SQL):
            exprs.append(value.expr)
            params.append(value.param)
        else:
            exprs.append("?")
            params.append(value)
    with sqlite3.connect(path, timeout=30) as conn:
        stored = conn.execute(f"INSERT INTO messages ({', '.join(names)})"
                              f" VALUES ({', '.join(exprs)}) RETURNING {returning}",
                              params).fetchone()
    conn.close()
    return stored[0] if returning == "id" else stored


def remaining(path: Path, rowid: int) -> bool:
    with sqlite3.connect(path, timeout=30) as conn:
        found = conn.execute("SELECT 1 FROM messages WHERE id = ?", (rowid,)).fetchone()
    conn.close()
    return found is not None


@pytest.fixture
def app(sqlite_app: Corekit) -> Corekit:
    @sqlite_app.task(name="echo")
    def echo(x: object = None) -> object:
        return x
    sqlite_app.producer.connect()  # creates the schema before the raw inserts
    return sqlite_app


def db_path(app: Corekit) -> Path:
    return Path(app.producer.path)  # type: ignore[attr-defined]


def test_a_text_body_runs_as_its_utf8_bytes(app: Corekit) -> None:
    row = good_row("text-body", ["héllo"])
    row["body"] = row["body"].decode()  # TEXT, as the sqlite3 shell writes it
    insert(db_path(app), row)
    good = app.tasks["echo"].delay("after")
    with start_worker(app):
        assert app.AsyncResult("text-body").get(timeout=10) == "héllo"
        assert good.get(timeout=10) == "after"
    assert app.producer.dead_letters() == []


BAD_COLUMNS = [
    pytest.param("priority", "high", "priority", id="priority-text"),
    pytest.param("priority", 1.5, "priority", id="priority-real"),
    pytest.param("headers", not_utf8_text(), "headers", id="headers-not-utf8"),
    pytest.param("properties", not_utf8_text(), "properties", id="properties-not-utf8"),
    pytest.param("body", not_utf8_text(), "body", id="body-not-utf8-text"),
    pytest.param("body", 42, "body", id="body-integer"),
    pytest.param("content_type", b"\xff", "content_type", id="content-type-blob"),
    pytest.param("content_encoding", b"\x80", "content_encoding", id="content-encoding-blob"),
    pytest.param("exchange", not_utf8_text(b"\xc3"), "exchange", id="exchange-not-utf8"),
    pytest.param("routing_key", b"\x00\xff", "routing_key", id="routing-key-blob"),
]


@pytest.mark.parametrize(("column", "value", "named"), BAD_COLUMNS)
def test_a_row_that_is_no_message_is_dead_lettered_alone(app: Corekit, column: str,
                                                         value: Any, named: str) -> None:
    before = app.tasks["echo"].delay("before")
    row = good_row(f"bad-{column}", [1])
    row[column] = value
    rowid = insert(db_path(app), row)
    after = app.tasks["echo"].delay("after")
    with start_worker(app):
        assert before.get(timeout=10) == "before"
        assert after.get(timeout=10) == "after"
    assert not remaining(db_path(app), rowid)
    [letter] = app.producer.dead_letters()
    assert named in letter.reason
    assert app.AsyncResult(f"bad-{column}").state == "PENDING"


def test_a_bad_eta_in_any_queue_is_dead_lettered_and_fetch_goes_on(app: Corekit) -> None:
    path = db_path(app)
    mine = good_row("eta-mine", [1])
    mine["eta"] = "tomorrow"
    theirs = good_row("eta-theirs", [2], queue="nobody.consumes")
    theirs["eta"] = not_utf8_text()
    blob = good_row("eta-blob", [3], queue="nobody.consumes")
    blob["eta"] = b"\x01"
    ids = [insert(path, mine), insert(path, theirs), insert(path, blob)]
    due = good_row("eta-due", ["due"])
    due["eta"] = time.time() - 1  # a good delayed row beside them still runs
    insert(path, due)
    transport = default_manager().get("transports", "sqlite")(app.conf.broker_url, {})
    try:
        assert transport.fetch(["elsewhere"], 10, 0.05) == []  # never raises
    finally:
        transport.close()
    good = app.tasks["echo"].delay("fine")
    with start_worker(app):
        assert good.get(timeout=10) == "fine"
        assert app.AsyncResult("eta-due").get(timeout=10) == "due"
    assert not any(remaining(path, i) for i in ids)
    letters = app.producer.dead_letters()
    assert len(letters) == 3
    assert all("eta" in d.reason for d in letters)
    assert {d.message.queue for d in letters} == {"celery", "nobody.consumes"}


def test_dead_lettered_raw_rows_are_listed_and_replayed_as_they_were(app: Corekit) -> None:
    path = db_path(app)
    row = good_row("raw-listed", [1])
    row["headers"] = not_utf8_text(b"{\"task\": \"\xff\"}")
    insert(path, row)
    text = good_row("text-priority", [1])
    text["priority"] = "urgent"
    insert(path, text)
    with start_worker(app):
        assert app.tasks["echo"].delay("x").get(timeout=10) == "x"
    letters = app.producer.dead_letters()
    assert len(letters) == 2
    assert all(d.message.queue == "celery" for d in letters)
    listing = run_cli("-b", app.conf.broker_url, "dlq", "list")
    assert listing.returncode == 0, listing.stderr
    assert "headers" in listing.stdout and "priority" in listing.stdout
    # replay restores the raw row; fixed by the operator, it then runs
    assert app.producer.replay_dead_letters() == 2
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE messages SET priority = 0 WHERE priority = 'urgent'")
    conn.close()
    with start_worker(app):
        assert app.AsyncResult("text-priority").get(timeout=10) == 1
        assert app.tasks["echo"].delay("y").get(timeout=10) == "y"
    [again] = app.producer.dead_letters()
    assert "headers" in again.reason


# -- fuzzing the stored form ----------------------------------------------------------
def column_values(good: Any) -> st.SearchStrategy[Any]:
    """The good value, or anything SQLite can hold in its place."""
    return st.one_of(
        st.just(good), st.none(), st.integers(-2**63, 2**63 - 1),
        st.floats(allow_nan=False), st.text(max_size=20), st.binary(max_size=20),
        st.binary(max_size=8).map(not_utf8_text),
        st.sampled_from(["{}", "[]", "null", "1", "[[[[[[[[[[", '{"task": 1}', "[" * 5000]))


def fuzzed_rows() -> st.SearchStrategy[dict[str, Any]]:
    base = good_row("fuzz", [0])  # the task id is filled in per example
    return st.fixed_dictionaries({name: st.one_of(st.just(value), column_values(value))
                                  for name, value in base.items()})


NOT_NULL = {"queue", "priority", "headers", "properties", "content_type", "content_encoding",
            "exchange", "routing_key", "body", "redelivered"}


#: What a fuzzed row is, as stored: its id, its ETA's type and value, and whether it is in ``celery``.
STORED = ("id, typeof(eta), CASE WHEN typeof(eta) IN ('integer', 'real') THEN eta END,"
          " queue = 'celery'")


def expected_to_stay(eta_type: str, eta: Any, in_celery: int) -> bool:
    """Whether a worker of ``celery`` must leave the stored row alone: a
    well-formed ETA still in the future, or another queue.  An ETA that is
    not a number is dead-lettered by any worker, whatever its queue."""
    if eta_type in ("text", "blob"):
        return False
    if eta_type != "null" and eta > time.time():
        return True
    return not in_celery


def test_fuzzed_rows_are_run_or_dead_lettered_and_never_stop_the_worker(app: Corekit) -> None:
    path = db_path(app)
    dead = [0]

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(fuzzed_rows())
    def one(row: dict[str, Any]) -> None:
        if any(row[c] is None for c in NOT_NULL):
            return  # the schema refuses it (NOT NULL)
        task_id = f"fuzz-{uuid.uuid4().hex}"
        if row["headers"] == good_row("fuzz", [0])["headers"]:
            row = {**row, "headers": good_row(task_id, [0])["headers"]}
        before = app.tasks["echo"].delay("before")
        rowid, *stored = insert(path, row, STORED)
        stays = expected_to_stay(*stored)
        after = app.tasks["echo"].delay("after")
        assert before.get(timeout=10) == "before"
        assert after.get(timeout=10) == "after"
        if stays:
            assert remaining(path, rowid)
            with sqlite3.connect(path) as conn:  # out of the way of later examples
                conn.execute("DELETE FROM messages WHERE id = ?", (rowid,))
            conn.close()
            return
        deadline = time.monotonic() + 10
        while remaining(path, rowid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not remaining(path, rowid), row
        letters = len(app.producer.dead_letters(10**6))
        ran = app.AsyncResult(task_id).ready()
        while letters == dead[0] and not ran and time.monotonic() < deadline:
            time.sleep(0.01)
            letters = len(app.producer.dead_letters(10**6))
            ran = app.AsyncResult(task_id).ready()
        assert letters == dead[0] + (0 if ran else 1), row
        if letters > dead[0]:
            assert app.producer.dead_letters(10**6)[-1].reason
        dead[0] = letters

    with start_worker(app):
        one()
    listing = run_cli("-b", app.conf.broker_url, "dlq", "list", "--limit", "1000")
    assert listing.returncode == 0, listing.stderr


def test_a_flood_of_poison_rows_ahead_of_a_task_holds_nothing_up(app: Corekit) -> None:
    path = db_path(app)
    for n in range(300):  # text priorities sort first: every claim meets poison first
        row = good_row(f"flood-{n}", [n])
        row["priority"] = "urgent"
        row["body"] = not_utf8_text()
        insert(path, row)
    with start_worker(app):
        assert app.tasks["echo"].delay("through").get(timeout=30) == "through"
    assert len(app.producer.dead_letters(1000)) == 300


def test_nulls_in_a_table_another_tool_created_are_dead_lettered(tmp_path: Path) -> None:
    """A ``messages`` table made by something else, without NOT NULL:
    corekit keeps it (CREATE TABLE IF NOT EXISTS), so NULLs can arrive."""
    path = tmp_path / "foreign.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT,"
                     " priority INTEGER, eta REAL, owner TEXT, redelivered INTEGER,"
                     " headers TEXT, properties TEXT, content_type TEXT,"
                     " content_encoding TEXT, exchange TEXT, routing_key TEXT, body BLOB)")
    conn.close()
    url = f"sqlite://{path}"
    app = Corekit("tests", broker=url, backend=url, broker_heartbeat=0.2,
                  broker_lease_timeout=2.0)
    try:
        @app.task(name="echo")
        def echo(x: object = None) -> object:
            return x
        app.producer.connect()
        for column in ("priority", "headers", "properties", "content_type", "body",
                       "redelivered"):
            row = good_row(f"null-{column}", [1])
            row[column] = None
            insert(path, row)
        with start_worker(app):
            assert echo.delay("fine").get(timeout=10) == "fine"
            assert app.AsyncResult("null-redelivered").get(timeout=10) == 1
        reasons = sorted(d.reason for d in app.producer.dead_letters())
        assert len(reasons) == 5, reasons
        for column in ("priority", "headers", "properties", "content_type", "body"):
            assert any(f"'{column}'" in reason for reason in reasons), (column, reasons)
    finally:
        app.close()
