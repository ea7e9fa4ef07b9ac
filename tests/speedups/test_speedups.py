"""The hot path's compiled modules and their pure-Python twins: which one is
chosen, and decode (`parse_iso8601`, `decode_batch`, `TaskHeaders`).

Every behaviour runs on both twins; hypothesis compares them on random and
malformed input.  EtaHeap and Dispatcher: test_speedups_etaheap.py and
test_speedups_dispatch.py.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import corekit._speedups as speedups
from corekit.messages import build_message, task_headers
from corekit.messages import Message

from helpers import CYTHON, IMPLS, PYTHON, needs_both


# -- choosing the implementation --------------------------------------------------------
def test_a_build_that_should_have_compiled_did() -> None:
    if os.environ.get("COREKIT_EXPECT_EXTENSIONS") != "1":
        pytest.skip("COREKIT_EXPECT_EXTENSIONS=1 is not set (scripts/test.sh sets it)")
    assert CYTHON is not None, "the Cython extensions are not importable: the build fell back"
    assert speedups.IMPLEMENTATION == "cython", speedups.FALLBACK_REASON
    assert speedups.FALLBACK_REASON is None


def _selected(no_extensions: str | None) -> list[str]:
    code = ("import corekit._speedups as s; "
            "print(s.IMPLEMENTATION, s.EtaHeap.__module__, s.decode_batch.__module__)")
    env = {k: v for k, v in os.environ.items() if k != "COREKIT_NO_EXTENSIONS"}
    if no_extensions is not None:
        env["COREKIT_NO_EXTENSIONS"] = no_extensions
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    return out.stdout.split()


def test_no_extensions_env_selects_the_twins() -> None:
    assert _selected("1") == ["python", "corekit._speedups.etaheap", "corekit._speedups.decode"]


@needs_both
@pytest.mark.parametrize("value", [None, "", "0"])
def test_extensions_are_chosen_when_built_and_not_disabled(value: str | None) -> None:
    assert _selected(value) == ["cython", "corekit._speedups._etaheap",
                                "corekit._speedups._decode"]


def test_public_names_come_from_the_chosen_implementation() -> None:
    chosen = speedups.load(speedups.IMPLEMENTATION)
    for name in speedups.NAMES:
        assert getattr(speedups, name) is getattr(chosen, name), name
    assert set(speedups.__all__) >= {"IMPLEMENTATION", "load", *speedups.NAMES}
    assert PYTHON.IMPLEMENTATION == "python"
    with pytest.raises(ValueError, match="unknown implementation"):
        speedups.load("rust")


# -- parse_iso8601 --------------------------------------------------------------------------
def expected_epoch(text: str) -> float:
    """The reference: the stdlib's parser, naive meaning UTC."""
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


VALID = ["2026-11-22T10:00:00", "2026-11-22 10:00:00", "2026-11-22T10:00:00Z",
         "2026-11-22T10:00:00.5", "2026-11-22T10:00:00.12", "2026-11-22T10:00:00.123",
         "2026-11-22T10:00:00.1234", "2026-11-22T10:00:00.12345", "2026-11-22T10:00:00.123456",
         "2026-11-22T10:00:00.123456Z", "2026-11-22T12:00:00+02:00",
         "1999-12-31T23:59:59-08:30", "2026-11-22T10:00:00.000001+00:00",
         "2026-11-22T10:00:00-00:00", "2024-02-29T00:00:00", "2000-02-29T12:00:00",
         "1970-01-01T00:00:00", "1969-12-31T23:59:59.999999", "0001-01-01T00:00:00+01:00",
         "0001-01-01T00:00:00", "9999-12-31T23:59:59.999999-23:59", "2255-06-05T23:47:34.740993",
         "2038-01-19T03:14:08+14:00"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("text", VALID)
def test_parse_iso8601(impl: Any, text: str) -> None:
    result = impl.parse_iso8601(text)
    assert type(result) is float and result == expected_epoch(text)


INVALID = ["", "yesterday", "2026-11-22", "2026-11-22T10:00", "2026-11-22T10", "20261122T100000",
           "2026-13-01T00:00:00", "2026-00-01T00:00:00", "2026-02-30T00:00:00",
           "2023-02-29T00:00:00", "1900-02-29T00:00:00", "0000-01-01T00:00:00",
           "2026-11-22T24:00:00", "2026-11-22T10:60:00", "2026-11-22T10:00:60",
           "2026-11-22T10:00:00+5", "2026-11-22T10:00:00+05", "2026-11-22T10:00:00+0500",
           "2026-11-22T10:00:00+24:00", "2026-11-22T10:00:00+05:60", "2026-11-22T10:00:00+05:00:00",
           "2026-11-22T10:00:00.", "2026-11-22T10:00:00.1234567", "2026-11-22T10:00:00,5",
           "2026-11-22t10:00:00", "2026-11-22x10:00:00", "2026-11-22T10:00:00z",
           "2026-11-22T10:00:00ZZ", "2026-11-22T10:00:00Z ", " 2026-11-22T10:00:00",
           "2026-11-22T10:00:00\n", "2026-11-22T10:00:00 +00:00", "+2026-11-22T10:00:00",
           "2026-1-22T10:00:00", "2026-11-22T1:00:00", "2026-11-2٢T10:00:00",
           "２０２６-11-22T10:00:00", "2026-11-22T10:00:00.５", "2026-11-22T10:00:00\x00",
           "2026/11/22T10:00:00", "2026-11-22T10-00-00", "2026-11-22T10:00:00-",
           "-026-11-22T10:00:00", "2026-11-22T10:00:00.-1", "2026-11-22T10:00:00+-1:00"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("value", [*INVALID, 12, 1.5, None, b"2026-11-22T10:00:00",
                                   ["2026-11-22T10:00:00"]])
def test_parse_iso8601_rejects(impl: Any, value: Any) -> None:
    with pytest.raises(ValueError, match="not an ISO-8601 timestamp"):
        impl.parse_iso8601(value)


def _iso(when: datetime, sep: str, digits: int, zone: Any) -> str:
    text = when.strftime(f"%Y-%m-%d{sep}%H:%M:%S")  # %Y pads to 4 digits on glibc
    text = f"{when.year:04d}{text[text.index('-'):]}"
    if digits:
        text += "." + f"{when.microsecond:06d}"[:digits]
    if zone == "Z":
        return text + "Z"
    if zone is not None:
        sign, hours, minutes = zone
        text += f"{sign}{hours:02d}:{minutes:02d}"
    return text


valid_iso = st.builds(
    _iso, st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    st.sampled_from("T "), st.integers(0, 6),
    st.one_of(st.none(), st.just("Z"),
              st.tuples(st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59))))


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=300, deadline=None)
@given(text=valid_iso)
def test_parse_iso8601_matches_the_stdlib(impl: Any, text: str) -> None:
    assert impl.parse_iso8601(text) == expected_epoch(text)


def _mutate(text: str, pos: int, op: str, char: str) -> str:
    pos %= len(text) + 1
    if op == "replace":
        return text[:pos] + char + text[pos + 1:]
    if op == "insert":
        return text[:pos] + char + text[pos:]
    return text[:pos] + text[pos + 1:]


near_iso = st.builds(_mutate, valid_iso, st.integers(0, 40),
                     st.sampled_from(["replace", "insert", "delete"]),
                     st.sampled_from(list("0123456789-:.+ TZtz,x\n") + ["٣", "é", "\x00"]))


def _outcome(fn: Any, value: Any) -> Any:
    try:
        return fn(value)
    except ValueError:
        return ValueError


@needs_both
@settings(max_examples=500, deadline=None)
@given(st.one_of(valid_iso, near_iso, st.text(max_size=40),
                 st.text(alphabet="0123456789-:.+ TZ", min_size=17, max_size=34)))
def test_parse_iso8601_twins_agree(text: str) -> None:
    got = _outcome(CYTHON.parse_iso8601, text)
    assert got == _outcome(PYTHON.parse_iso8601, text)
    if got is not ValueError:  # whatever the twins accept, the stdlib reads the same
        assert got == expected_epoch(text)


# -- decode_batch -----------------------------------------------------------------------------
def message(headers: Any, content_type: Any = "application/json", **kw: Any) -> Message:
    return Message(body=b"\xff not decoded", headers=headers, properties={},
                   content_type=content_type, **kw)


GOOD = {"lang": "py", "task": "proj.add", "id": "abc", "retries": 2,
        "eta": "2026-01-01T00:00:00", "expires": "2026-01-01T01:00:00.5+01:00",
        "timelimit": [10, 5.5], "root_id": "r", "parent_id": "p", "group": "g",
        "ignore_result": True, "compression": "application/zstd", "argsrepr": "(1, 2)"}
FIELDS = ("task", "id", "root_id", "parent_id", "group", "retries", "eta", "expires",
          "time_limit", "soft_time_limit", "ignore_result", "compression", "content_type",
          "redelivered")


def fields(headers: Any) -> tuple[Any, ...]:
    """Every decoded field with its type, so 10 and 10.0 differ."""
    return tuple((type(v).__name__, v) for v in (getattr(headers, f) for f in FIELDS))


@pytest.mark.parametrize("impl", IMPLS)
def test_decode_a_full_message(impl: Any) -> None:
    m = message(GOOD, redelivered=True)
    [h], bad = impl.decode_batch([m])
    assert bad == [] and h.message is m and isinstance(h, impl.TaskHeaders)
    assert fields(h) == fields(PYTHON.TaskHeaders(
        m, "proj.add", "abc", root_id="r", parent_id="p", group="g", retries=2,
        eta=1767225600.0, expires=1767225600.5, time_limit=10.0, soft_time_limit=5.5,
        ignore_result=True, compression="application/zstd"))
    assert h.redelivered is True and h.content_type == "application/json"
    assert repr(h) == ("<TaskHeaders proj.add[abc] retries=2 eta=1767225600.0 "
                       "expires=1767225600.5>")


@pytest.mark.parametrize("impl", IMPLS)
def test_decode_a_minimal_message(impl: Any) -> None:
    [h], _ = impl.decode_batch([message(OrderedDict(task="t", id="i"),
                                        content_type="application/x-msgpack")])
    assert fields(h) == (("str", "t"), ("str", "i"), ("NoneType", None), ("NoneType", None),
                         ("NoneType", None), ("int", 0), ("NoneType", None), ("NoneType", None),
                         ("NoneType", None), ("NoneType", None), ("bool", False),
                         ("NoneType", None), ("str", "application/x-msgpack"), ("bool", False))


@pytest.mark.parametrize("impl", IMPLS)
def test_decode_what_corekit_publishes(impl: Any) -> None:
    sent = [build_message(task_headers("proj.add", f"id-{i}", [i], {}, eta=1795341600.25 + i,
                                       expires=1795345200.0, retries=i, time_limit=30,
                                       soft_time_limit=None, group_id="g1"),
                          b"[[1],{},{}]", "application/json", "utf-8", "application/x-gzip",
                          queue="celery") for i in range(3)]
    good, bad = impl.decode_batch(sent)
    assert bad == [] and [h.id for h in good] == ["id-0", "id-1", "id-2"]
    assert [h.eta for h in good] == [1795341600.25, 1795341601.25, 1795341602.25]
    assert {(h.expires, h.time_limit, h.soft_time_limit, h.group, h.compression)
            for h in good} == {(1795345200.0, 30.0, None, "g1", "application/x-gzip")}
    assert [h.retries for h in good] == [0, 1, 2] and all(h.root_id == h.id for h in good)


class NotAMessage:
    headers = {"task": "t", "id": "i"}


BAD = [
    (message("not a dict"), "headers are not a dict: str"),
    (message(None), "headers are not a dict: NoneType"),
    (message([("task", "t")]), "headers are not a dict: list"),
    (NotAMessage(), "not a message object: NotAMessage"),
    (None, "not a message object: NoneType"),
    (message({**GOOD, "task": None}), "missing 'task' header"),
    (message({"id": "i"}), "missing 'task' header"),
    (message({**GOOD, "task": ""}), "bad 'task' header: ''"),
    (message({**GOOD, "task": b"proj.add"}), "bad 'task' header: b'proj.add'"),
    (message({"task": "t"}), "missing 'id' header"),
    (message({**GOOD, "id": 5}), "bad 'id' header: 5"),
    (message({**GOOD, "id": ""}), "bad 'id' header: ''"),
    (message(GOOD, content_type=None), "bad content type: None"),
    (message(GOOD, content_type=b"application/json"), "bad content type: b'application/json'"),
    (message({**GOOD, "retries": "2"}), "bad 'retries' header: '2'"),
    (message({**GOOD, "retries": 2.0}), "bad 'retries' header: 2.0"),
    (message({**GOOD, "retries": True}), "bad 'retries' header: True"),
    (message({**GOOD, "retries": -1}), "bad 'retries' header: -1"),
    (message({**GOOD, "retries": 2**63}), f"bad 'retries' header: {2**63}"),
    (message({**GOOD, "timelimit": [1]}), "bad 'timelimit' header: [1]"),
    (message({**GOOD, "timelimit": [1, 2, 3]}), "bad 'timelimit' header: [1, 2, 3]"),
    (message({**GOOD, "timelimit": "10"}), "bad 'timelimit' header: '10'"),
    (message({**GOOD, "timelimit": {"hard": 1, "soft": 2}}),
     "bad 'timelimit' header: {'hard': 1, 'soft': 2}"),
    (message({**GOOD, "timelimit": [None, "5"]}), "bad 'timelimit' header: [None, '5']"),
    (message({**GOOD, "timelimit": [True, None]}), "bad 'timelimit' header: [True, None]"),
    (message({**GOOD, "timelimit": [-1, None]}), "bad 'timelimit' header: [-1, None]"),
    (message({**GOOD, "timelimit": [float("nan"), None]}), "bad 'timelimit' header: [nan, None]"),
    (message({**GOOD, "timelimit": [None, float("inf")]}),
     "bad 'timelimit' header: [None, inf]"),
    (message({**GOOD, "timelimit": [10**400, None]}),
     f"bad 'timelimit' header: {repr([10**400, None])[:97]}..."),
    (message({**GOOD, "eta": "soon"}), "bad 'eta' header: 'soon'"),
    (message({**GOOD, "eta": 1795341600.0}), "bad 'eta' header: 1795341600.0"),
    (message({**GOOD, "eta": "2026-02-30T00:00:00"}), "bad 'eta' header: '2026-02-30T00:00:00'"),
    (message({**GOOD, "expires": "2026-11-22"}), "bad 'expires' header: '2026-11-22'"),
    (message({**GOOD, "expires": ["2026-11-22T10:00:00"]}),
     "bad 'expires' header: ['2026-11-22T10:00:00']"),
    (message({**GOOD, "root_id": 1}), "bad 'root_id' header: 1"),
    (message({**GOOD, "parent_id": ["p"]}), "bad 'parent_id' header: ['p']"),
    (message({**GOOD, "group": 7}), "bad 'group' header: 7"),
    (message({**GOOD, "compression": 9}), "bad 'compression' header: 9"),
    (message({**GOOD, "ignore_result": 1}), "bad 'ignore_result' header: 1"),
    (message({**GOOD, "ignore_result": "yes"}), "bad 'ignore_result' header: 'yes'"),
    (message({**GOOD, "id": ["x" * 200]}), f"bad 'id' header: {repr(['x' * 200])[:97]}..."),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bad_message, reason", BAD, ids=[r for _, r in BAD])
def test_decode_rejects_with_a_reason(impl: Any, bad_message: Any, reason: str) -> None:
    good, bad = impl.decode_batch([bad_message])
    assert good == [] and len(bad) == 1
    assert bad[0][0] is bad_message and bad[0][1] == reason


@pytest.mark.parametrize("impl", IMPLS)
def test_decode_keeps_order_and_never_raises(impl: Any) -> None:
    class Unrepresentable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    batch = [message({**GOOD, "id": str(i)}) if i % 3 else message({**GOOD, "retries": "x"})
             for i in range(30)]
    batch.append(message({**GOOD, "group": Unrepresentable()}))
    good, bad = impl.decode_batch(tuple(batch))
    assert [h.id for h in good] == [str(i) for i in range(30) if i % 3]
    assert [m for m, _ in bad] == [batch[i] for i in range(0, 30, 3)] + [batch[-1]]
    assert bad[-1][1] == "bad 'group' header: <unrepresentable Unrepresentable>"
    assert impl.decode_batch([]) == ([], [])


@pytest.mark.parametrize("impl", IMPLS)
def test_decode_accepts_permissive_but_valid_shapes(impl: Any) -> None:
    [h], _ = impl.decode_batch([message({"task": "t", "id": "i", "retries": None,
                                         "timelimit": (None, 3), "eta": None,
                                         "ignore_result": None, "compression": None})])
    assert (h.retries, h.time_limit, h.soft_time_limit, h.ignore_result) == (0, None, 3.0, False)
    assert type(h.soft_time_limit) is float


@pytest.mark.parametrize("impl", IMPLS)
def test_task_headers_constructor_and_repr(impl: Any) -> None:
    m = message({}, redelivered=True)
    h = impl.TaskHeaders(m, "t", "i", retries=3, eta=1.5)
    assert (h.message, h.task, h.id, h.retries, h.eta, h.expires, h.content_type,
            h.redelivered, h.ignore_result) == (m, "t", "i", 3, 1.5, None, "application/json",
                                                True, False)
    assert repr(h) == "<TaskHeaders t[i] retries=3 eta=1.5 expires=None>"
    h.group = "g"
    assert h.group == "g"


header_value = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 5), st.sampled_from([2**63 - 1, 2**63, 10**400]),
    st.floats(), st.text(max_size=6), valid_iso, near_iso, st.binary(max_size=3),
    st.lists(st.one_of(st.none(), st.booleans(), st.integers(-2, 9), st.floats(),
                       st.text(max_size=2)), max_size=3).map(lambda xs: xs),
    st.tuples(st.one_of(st.none(), st.floats(0, 1e6)), st.one_of(st.none(), st.integers(0, 99))),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2))
KEYS = sorted({*GOOD, "shadow", "origin"})
random_headers = st.one_of(
    st.fixed_dictionaries({}, optional={k: header_value for k in KEYS}),
    st.builds(lambda d: {**GOOD, **d}, st.dictionaries(st.sampled_from(KEYS), header_value,
                                                       max_size=3)),
    st.builds(lambda d: OrderedDict({**GOOD, **d}),
              st.dictionaries(st.sampled_from(KEYS), header_value, max_size=1)),
    header_value)
random_messages = st.lists(st.one_of(
    st.builds(message, random_headers,
              st.sampled_from(["application/json", "application/x-msgpack", "", None, 3]),
              redelivered=st.booleans()),
    st.none()), max_size=8)


def _summary(result: tuple[list[Any], list[Any]]) -> Any:
    good, bad = result
    return ([(id(h.message), fields(h), repr(h)) for h in good],
            [(id(m), reason) for m, reason in bad])


@needs_both
@settings(max_examples=500, deadline=None)
@given(random_messages)
def test_decode_batch_twins_agree(batch: list[Any]) -> None:
    expected = _summary(PYTHON.decode_batch(batch))
    assert _summary(CYTHON.decode_batch(batch)) == expected
    assert len(expected[0]) + len(expected[1]) == len(batch)
