"""corekit's JSON is kombu's JSON: ``datetime``, ``date``, ``time``,
``Decimal``, ``UUID`` and bytes travel with kombu's ``{"__type__",
"__value__"}`` markers, and each library reads the other's back as the same
types (checked against the real kombu package)."""
from __future__ import annotations

import json
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corekit.exceptions import DecodeError
from corekit.pluginmanager import default_manager
from corekit.serialization import Codecs

kombu_json = pytest.importorskip("kombu.utils.json")

PM = default_manager()
JSON = PM.get("serializers", "json")
CODECS = Codecs(PM.registry("serializers").values(), PM.registry("compressors").values())

VALUES: list[Any] = [
    datetime(2026, 12, 2, 16, 42, 5, 123456), datetime(2026, 1, 1, tzinfo=timezone.utc),
    datetime(2026, 1, 1, 5, tzinfo=timezone(timedelta(hours=-3))), date(2026, 2, 28),
    time(23, 59, 59, 999), time(1, 2, tzinfo=timezone.utc), Decimal("1.5"),
    Decimal("-0.000000000000000000001"), Decimal("1E+400"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"), b"plain bytes", b"\xff\x00\xfe",
    b"", {"nested": [Decimal("2.25"), {"when": date(2020, 5, 17)}]},
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_kombu_reads_what_corekit_wrote(value: Any) -> None:
    back = kombu_json.loads(JSON.dumps(value))
    assert back == value and type(back) is type(value)


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_corekit_reads_what_kombu_wrote(value: Any) -> None:
    back = JSON.loads(kombu_json.dumps(value).encode())
    assert back == value and type(back) is type(value)


def test_the_markers_are_kombus() -> None:
    assert json.loads(JSON.dumps([datetime(2026, 1, 2, 3, 4, 5), Decimal("1.5"), b"ab"])) == [
        {"__type__": "datetime", "__value__": "2026-01-02T03:04:05"},
        {"__type__": "decimal", "__value__": "1.5"},
        {"__type__": "bytes", "__value__": "ab"}]
    assert json.loads(JSON.dumps(uuid.UUID(int=1))) == {
        "__type__": "uuid", "__value__": {"hex": "00000000000000000000000000000001"}}
    assert json.loads(JSON.dumps(b"\xff")) == {"__type__": "base64", "__value__": "/w=="}


def test_a_task_body_round_trips_with_its_types() -> None:
    body = ((Decimal("9.99"), uuid.UUID(int=7)), {"at": datetime(2026, 3, 1, 12)},
            {"callbacks": None, "errbacks": None, "chain": None, "chord": None})
    data, ctype, _, _ = CODECS.encode(body, "json")
    args, kwargs, embed = CODECS.decode(data, ctype)
    assert args == [Decimal("9.99"), uuid.UUID(int=7)]
    assert kwargs == {"at": datetime(2026, 3, 1, 12)} and type(kwargs["at"]) is datetime


@pytest.mark.parametrize("hostile", [
    b'{"__type__": "nope", "__value__": 1}',
    b'{"__type__": "uuid", "__value__": {"hex": "zz"}}',
    b'{"__type__": "uuid", "__value__": {"int": 1, "bytes": "x"}}',
    b'{"__type__": "datetime", "__value__": 5}',
    b'{"__type__": "decimal", "__value__": "one"}',
    b'{"__type__": "base64", "__value__": "!!!"}',
    b'{"__type__": "bytes", "__value__": ["x"]}',
])
def test_a_bad_marker_is_a_decode_error(hostile: bytes) -> None:
    with pytest.raises(DecodeError):
        CODECS.decode(hostile, "application/json")


def test_a_dict_with_more_keys_is_left_alone() -> None:
    doc = {"__type__": "decimal", "__value__": "1", "other": 2}
    assert JSON.loads(json.dumps(doc).encode()) == doc


kombu_types = st.one_of(
    st.datetimes(timezones=st.none() | st.timezones()), st.dates(),
    st.times(timezones=st.none() | st.just(timezone.utc)),
    st.decimals(allow_nan=False, allow_infinity=False), st.uuids(), st.binary(max_size=64),
    st.text(max_size=20), st.integers(), st.booleans(), st.none(),
    st.floats(allow_nan=False, allow_infinity=False))
documents = st.recursive(kombu_types, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                         max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_round_trip_both_ways(value: Any) -> None:
    ours = JSON.dumps(value)
    assert JSON.loads(ours) == value
    assert kombu_json.loads(ours) == value
    assert JSON.loads(kombu_json.dumps(value).encode()) == value


def test_an_escaped_marker_reads_as_kombu_reads_it() -> None:
    doc = b'{"\\u005f_type__": "decimal", "__value__": "1.5"}'
    assert JSON.loads(doc) == kombu_json.loads(doc) == Decimal("1.5")
