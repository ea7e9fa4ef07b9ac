"""Stored ``messages`` rows to `Message` objects, for rows anyone wrote.

A row written by corekit always converts; one written by someone else (the
sqlite3 shell, a producer in another language, a hand edit) may not.  What
each column must hold:

- ``body``: a BLOB, or TEXT taken as its UTF-8 bytes (what such a producer
  means by a JSON body);
- ``headers`` and ``properties``: JSON text (whether the values make a task
  is the worker's to judge, and it dead-letters what does not);
- ``queue``, ``content_type``, ``content_encoding``, ``exchange``,
  ``routing_key``: UTF-8 text (a BLOB of valid UTF-8 is taken as text);
- ``priority``: an integer; ``eta``: NULL or a number.

A row that breaks any of these is moved to ``dead_letters`` as it is
stored, with the reason naming the column, and logged at ERROR: it never
stops a fetch, and the rest of its batch is delivered.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import time
from typing import Any, Callable, Sequence

from corekit.messages import Message

logger = logging.getLogger("corekit.transport.sqlite")

#: The message columns, in the order the converters read them after ``id, redelivered``.
COLUMNS = ("queue, priority, headers, properties, content_type, content_encoding, exchange,"
           " routing_key, body")
#: The same, text read as bytes: text that is not UTF-8 cannot be read as ``str``
#: (sqlite3 raises for the whole query), so such a query is run again with these.
CAST_COLUMNS = ", ".join(name if name == "priority" else f"CAST({name} AS BLOB)"
                         for name in COLUMNS.split(", "))
#: ETAs that are not numbers: SQLite orders every number before every TEXT and
#: BLOB, and no number exceeds 9e999 (infinity), so this is a range of the
#: ``messages_eta`` index, as cheap as the MIN(eta) beside it.
BAD_ETA = "eta > 9e999"
#: A NULL (possible in a table another tool created) is kept as '' (0 for priority).
BURY = ("INSERT INTO dead_letters ({}, reason, failed_at) SELECT {}, ?, ? FROM messages"
        " WHERE id = ?").format(COLUMNS, ", ".join(
            f"COALESCE({name}, {0 if name == 'priority' else repr('')})"
            for name in COLUMNS.split(", ")))


class BadRow(ValueError):
    """A stored row that cannot be a `Message`; the message says why."""


def select(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """Run *sql*, whose ``{}`` is the column list; text that is not UTF-8
    comes back as bytes instead of failing the query."""
    try:
        return conn.execute(sql.format(COLUMNS), params).fetchall()
    except sqlite3.OperationalError as exc:
        if "decode" not in str(exc):
            raise
        return conn.execute(sql.format(CAST_COLUMNS), params).fetchall()


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: Any, column: str) -> str:
    if type(value) is str:
        return value
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise BadRow(f"column {column!r} is not UTF-8 text: {_show(value)}") from None
    raise BadRow(f"column {column!r} is not text: {_show(value)}")


def _json(value: Any, column: str) -> Any:
    text = _text(value, column)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadRow(f"column {column!r} is not JSON ({exc.__class__.__name__}):"
                     f" {_show(text)}") from None


def _body(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if type(value) is str:  # TEXT: what a producer outside Python writes for JSON
        return value.encode()
    raise BadRow(f"column 'body' is neither a BLOB nor text: {_show(value)}")


def _priority(value: Any) -> int:
    if type(value) is int:
        return value
    raise BadRow(f"column 'priority' is not an integer: {_show(value)}")


def message(row: Sequence[Any]) -> Message:
    """The `Message` of a row ``id, redelivered, COLUMNS``, or BadRow."""
    (tag, redelivered, queue, priority, headers, properties, ctype, cenc, exchange,
     routing_key, body) = row
    if (type(body) is bytes and type(priority) is int and type(queue) is str
            and type(ctype) is str and type(cenc) is str and type(exchange) is str
            and type(routing_key) is str and type(headers) is str
            and type(properties) is str):  # what corekit writes: one check, no calls
        try:
            headers, properties = json.loads(headers), json.loads(properties)
        except (ValueError, TypeError, RecursionError):
            headers, properties = _json(headers, "headers"), _json(properties, "properties")
    else:
        body, priority = _body(body), _priority(priority)
        queue, ctype, cenc = _text(queue, "queue"), _text(ctype, "content_type"), _text(
            cenc, "content_encoding")
        exchange, routing_key = _text(exchange, "exchange"), _text(routing_key, "routing_key")
        headers, properties = _json(headers, "headers"), _json(properties, "properties")
    return Message(body=body, headers=headers, properties=properties, content_type=ctype,
                   content_encoding=cenc, queue=queue, exchange=exchange,
                   routing_key=routing_key, priority=priority, delivery_tag=tag,
                   redelivered=bool(redelivered))


def messages_or_bury(conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> list[Message]:
    """The messages of *rows*; a row that is none is buried (see `bury`)."""
    got = []
    for row in rows:
        try:
            got.append(message(row))
        except BadRow as exc:
            bury(conn, row[0], str(exc))
    return got


def bury(conn: sqlite3.Connection, rowid: int, reason: str) -> None:
    """Move row *rowid* to ``dead_letters`` as stored, in the caller's
    write transaction."""
    logger.error("Moved stored message %s to the dead-letter queue: %s", rowid, reason)
    conn.execute(BURY, (reason, time.time(), rowid))
    conn.execute("DELETE FROM messages WHERE id = ?", (rowid,))


def bury_bad_etas(conn: sqlite3.Connection) -> None:
    """Bury the rows, of any queue, whose ETA is not a number: no fetch
    could ever tell when they are due."""
    for rowid, kind in conn.execute(f"SELECT id, typeof(eta) FROM messages WHERE {BAD_ETA}"
                                    ).fetchall():
        bury(conn, rowid, f"column 'eta' is {kind}, not a number (epoch seconds)")


def _lenient(convert: Callable[..., Any], value: Any, *args: Any) -> Any:
    try:
        return convert(value, *args)
    except BadRow:
        if isinstance(value, bytes):
            return value.decode(errors="backslashreplace")
        return value if isinstance(value, str) else repr(value)


def letter_message(row: Sequence[Any]) -> Message:
    """A dead letter's row as a `Message` for listing: whatever a column
    holds is shown (bytes that are not UTF-8 escaped) instead of failing."""
    try:
        return message(row)
    except BadRow:
        pass
    (_, redelivered, queue, priority, headers, properties, ctype, cenc, exchange,
     routing_key, body) = row
    return Message(
        body=body if isinstance(body, bytes) else str(body).encode(errors="backslashreplace"),
        headers=_lenient(_json, headers, "headers"),
        properties=_lenient(_json, properties, "properties"),
        content_type=_lenient(_text, ctype, "content_type"),
        content_encoding=_lenient(_text, cenc, "content_encoding"),
        queue=_lenient(_text, queue, "queue"), exchange=_lenient(_text, exchange, "exchange"),
        routing_key=_lenient(_text, routing_key, "routing_key"),
        priority=priority if type(priority) is int else 0, redelivered=bool(redelivered))
