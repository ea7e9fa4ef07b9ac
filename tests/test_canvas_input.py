"""Malformed workflow parts from a hostile producer, and malformed
workflows a client tries to publish.

On the worker: a message whose body's third element (``callbacks``,
``errbacks``, ``chain``, ``chord``) holds something that is not a
signature still runs its task, which keeps its SUCCESS; the bad part is
named in a dead letter (a copy of the message) and the good callbacks
beside it still run.  On the client: such a workflow is refused before
anything is published.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corekit import Corekit, chain, group, signature
from corekit.exceptions import MalformedSignature
from corekit.messages import build_message, task_headers
from corekit.testing import start_worker

T = 15  # the longest any wait here lasts


@pytest.fixture(params=["sqlite", "redis"])
def app(request: pytest.FixtureRequest) -> Corekit:
    app: Corekit = request.getfixturevalue(f"{request.param}_app")

    @app.task(name="echo")
    def echo(x: Any) -> Any:
        return x

    @app.task(name="fail")
    def fail(x: Any) -> Any:
        raise RuntimeError(f"failed on {x!r}")

    return app


def publish_raw(app: Corekit, embed: Any, task: str = "echo", value: Any = "v",
                eta: float | None = None) -> str:
    """Publish a task message with *embed* as its body's third element, as
    a producer that does not use corekit would (an *eta* only in the
    headers); returns its id."""
    task_id = f"raw-{uuid.uuid4().hex}"
    headers = task_headers(task, task_id, [value], {}, eta=eta)
    body = json.dumps([[value], {}, embed]).encode()
    app.producer.publish([build_message(headers, body, "application/json", "utf-8", None,
                                        queue="celery")])
    return task_id


def good(task_id: str, task: str = "echo") -> dict[str, Any]:
    """A well-formed signature dict, in Celery's wire form."""
    return {"task": task, "args": [], "kwargs": {}, "options": {"task_id": task_id},
            "subtask_type": None, "immutable": False, "chord_size": None}


def letter_for(app: Corekit, task_id: str, timeout: float = T) -> str:
    """The reason of the dead letter of message *task_id* (it is written
    by the consumer beside the job, so it may come a moment after)."""
    deadline = time.monotonic() + timeout
    while True:
        for letter in app.producer.dead_letters(10_000):
            if letter.message.headers.get("id") == task_id:
                return letter.reason
        if time.monotonic() > deadline:
            raise AssertionError(f"no dead letter for {task_id}")
        time.sleep(0.02)


def letters_for(app: Corekit, task_id: str) -> list[str]:
    return [d.reason for d in app.producer.dead_letters(10_000)
            if d.message.headers.get("id") == task_id]


MALFORMED: list[tuple[str, Callable[[str], Any], str]] = [
    # (case, embed made from a good sibling's id, what the dead letter names)
    ("callback without task", lambda sib: {"callbacks": [{"args": []}, good(sib)]},
     "callbacks[0]"),
    ("callback task not a string", lambda sib: {"callbacks": [{**good("x"), "task": 5},
                                                              good(sib)]}, "callbacks[0]"),
    ("callback args a string", lambda sib: {"callbacks": [good(sib), {**good("y"),
                                                                      "args": "xy"}]},
     "callbacks[1].args"),
    ("callback kwargs a list", lambda sib: {"callbacks": [{**good("y"), "kwargs": [1]},
                                                          good(sib)]}, "callbacks[0].kwargs"),
    ("callback options a string", lambda sib: {"callbacks": [{**good("y"), "options": "q"},
                                                             good(sib)]},
     "callbacks[0].options"),
    ("callback that is a string", lambda sib: {"callbacks": ["echo", good(sib)]},
     "callbacks[0]"),
    ("callbacks a single dict", lambda sib: {"callbacks": good("y"), "chain": [good(sib)]},
     "callbacks"),
    ("nested link a string", lambda sib: {"callbacks": [
        {**good("y"), "options": {"link": "abc"}}, good(sib)]}, "callbacks[0].options.link"),
    ("nested countdown a string", lambda sib: {"callbacks": [
        {**good("y"), "options": {"countdown": "soon"}}, good(sib)]},
     "callbacks[0].options.countdown"),
    ("chain a string", lambda sib: {"chain": "abc", "callbacks": [good(sib)]}, "chain"),
    ("chain step without task", lambda sib: {"chain": [{"args": [1]}], "callbacks": [good(sib)]},
     "chain[0]"),
    ("group step with tasks a string", lambda sib: {"chain": [
        {**good("g"), "task": "celery.group", "subtask_type": "group",
         "kwargs": {"tasks": "abc"}}], "callbacks": [good(sib)]}, "chain[0].kwargs.tasks"),
    ("chord step without header", lambda sib: {"chain": [
        {**good("c"), "task": "celery.chord", "subtask_type": "chord",
         "kwargs": {"body": good("b")}}], "callbacks": [good(sib)]}, "chain[0].kwargs.header"),
    ("chord body a string", lambda sib: {"chord": "abc", "callbacks": [good(sib)]}, "chord"),
    ("chord body chord_size a string", lambda sib: {"chord": {**good("b"), "chord_size": "3"},
                                                    "callbacks": [good(sib)]},
     "chord.chord_size"),
    ("errbacks a string", lambda sib: {"errbacks": "abc", "callbacks": [good(sib)]},
     "errbacks"),
    ("embed a list", lambda sib: [good(sib)], "embed"),
    ("groups nested 300 deep", lambda sib: {"chain": [nested_groups(300)],
                                            "callbacks": [good(sib)]}, "nested more than"),
]


def nested_groups(depth: int) -> dict[str, Any]:
    sig = good("leaf")
    for _ in range(depth):
        sig = {**good("g"), "task": "celery.group", "subtask_type": "group",
               "kwargs": {"tasks": [sig]}}
    return sig


@pytest.mark.parametrize("case,make,names", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_a_malformed_workflow_part_leaves_the_parent_succeeded(
        app: Corekit, case: str, make: Callable[[str], Any], names: str) -> None:
    sibling = f"sib-{uuid.uuid4().hex}"
    with start_worker(app):
        task_id = publish_raw(app, make(sibling), value="kept")
        assert app.AsyncResult(task_id).get(timeout=T) == "kept"
        assert app.AsyncResult(task_id).state == "SUCCESS"
        if case != "embed a list":  # the good sibling beside the bad part still ran
            assert app.AsyncResult(sibling).get(timeout=T) == "kept"
        reason = letter_for(app, task_id)
        assert "malformed workflow" in reason and names in reason, reason
        # the worker is still up, and the broker holds no stray task (such as one named 'c')
        assert app.AsyncResult(publish_raw(app, None, value=2)).get(timeout=T) == 2
    assert letters_for(app, task_id) == [reason]
    assert not [d for d in app.producer.dead_letters(10_000) if "unknown task" in d.reason]


def test_one_dead_letter_for_a_message_that_comes_back_at_its_eta(app: Corekit) -> None:
    """A message that arrives before the ETA in its headers goes back to
    the broker to wait, and is dead-lettered once, when it runs."""
    sibling = f"sib-{uuid.uuid4().hex}"
    with start_worker(app):
        task_id = publish_raw(app, {"callbacks": [{"args": []}, good(sibling)]},
                              eta=time.time() + 1.0)
        assert app.AsyncResult(task_id).get(timeout=T) == "v"
        assert app.AsyncResult(sibling).get(timeout=T) == "v"
        letter_for(app, task_id)
        assert app.AsyncResult(publish_raw(app, None, value=3)).get(timeout=T) == 3
    assert len(letters_for(app, task_id)) == 1


def test_a_malformed_errback_leaves_the_failure_as_it_is(app: Corekit) -> None:
    sibling = f"sib-{uuid.uuid4().hex}"
    with start_worker(app):
        task_id = publish_raw(app, {"errbacks": [{"args": []}, good(sibling)]}, task="fail")
        result = app.AsyncResult(task_id)
        with pytest.raises(RuntimeError, match="failed on 'v'"):
            result.get(timeout=T)
        assert app.AsyncResult(sibling).get(timeout=T) == task_id  # sent with the failed id
        assert "errbacks[0]" in letter_for(app, task_id)


def test_a_well_formed_workflow_is_not_dead_lettered(app: Corekit) -> None:
    after = f"after-{uuid.uuid4().hex}"
    with start_worker(app):
        task_id = publish_raw(app, {"callbacks": [good(f"cb-{after}")], "errbacks": None,
                                    "chain": [good(after)], "chord": None})
        assert app.AsyncResult(after).get(timeout=T) == "v"
        assert app.AsyncResult(f"cb-{after}").get(timeout=T) == "v"
    assert letters_for(app, task_id) == []


# -- hypothesis: anything in the embed ------------------------------------------------
_junk = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                  st.text(max_size=5), st.lists(st.integers(), max_size=2),
                  st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@st.composite
def bad_signatures(draw: st.DrawFn) -> Any:
    """A signature dict with one part broken, or something else instead."""
    sig = good(f"bad-{uuid.uuid4().hex}")
    how = draw(st.sampled_from(["drop task", "task", "args", "kwargs", "options", "link",
                                "chain", "chord", "countdown", "priority", "tasks", "header",
                                "whole"]))
    junk = draw(_junk)
    if how == "drop task":
        del sig["task"]
    elif how == "task":
        sig["task"] = draw(st.one_of(st.none(), st.integers(), st.lists(st.text()),
                                     st.just("")))
    elif how in ("args", "kwargs", "options"):
        sig[how] = draw(_junk.filter(lambda v: not isinstance(
            v, list if how == "args" else dict) and v is not None))
    elif how in ("link", "chain", "chord"):
        sig["options"][how] = draw(st.one_of(st.text(min_size=1, max_size=5), st.integers(),
                                             st.lists(st.text(max_size=2), min_size=1,
                                                      max_size=2)))
    elif how in ("countdown", "priority"):
        sig["options"][how] = draw(st.one_of(st.text(min_size=1, max_size=4),
                                             st.lists(st.integers(), max_size=1),
                                             st.floats(allow_nan=True).filter(
                                                 lambda f: f != f or abs(f) > 1e15)))
    elif how == "tasks":  # anything but a list of signatures ([] is a well-formed group)
        sig.update(task="celery.group", subtask_type="group",
                   kwargs={"tasks": "abc" if junk == [] else junk})
    elif how == "header":
        sig.update(task="celery.chord", subtask_type="chord",
                   kwargs={"header": draw(st.text(min_size=1, max_size=3)), "body": good("b")})
    else:
        return draw(_junk.filter(lambda v: not isinstance(v, (list, dict)) and v is not None))
    return sig


@st.composite
def bad_embeds(draw: st.DrawFn) -> tuple[str, Callable[[str], Any]]:
    """(the part named in the dead letter, embed made from a good sibling's id)."""
    bad = draw(bad_signatures())
    where = draw(st.sampled_from(["callbacks", "errbacks", "chain", "chord", "not a list"]))
    if where == "callbacks":
        return "callbacks", lambda sib: {"callbacks": [good(sib), bad]}
    if where == "errbacks":
        return "errbacks", lambda sib: {"errbacks": [bad], "callbacks": [good(sib)]}
    if where == "chain":
        return "chain", lambda sib: {"chain": [bad], "callbacks": [good(sib)]}
    if where == "chord":
        return "chord", lambda sib: {"chord": bad, "callbacks": [good(sib)]}
    part = draw(st.sampled_from(["callbacks", "errbacks", "chain"]))
    junk = draw(st.one_of(st.text(min_size=1, max_size=4), st.integers(min_value=1),
                          st.just({"task": "echo"})))
    return part, lambda sib: {part: junk, "callbacks" if part != "callbacks" else "chain":
                              [good(sib)]}


def test_any_malformed_embed_keeps_the_parent_and_its_siblings(sqlite_app: Corekit) -> None:
    app = sqlite_app

    @app.task(name="echo")
    def echo(x: Any) -> Any:
        return x

    with start_worker(app):
        @settings(max_examples=60, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(bad_embeds(), st.integers())
        def check(case: tuple[str, Callable[[str], Any]], value: int) -> None:
            part, make = case
            sibling = f"sib-{uuid.uuid4().hex}"
            task_id = publish_raw(app, make(sibling), value=value)
            assert app.AsyncResult(task_id).get(timeout=T) == value
            assert app.AsyncResult(task_id).state == "SUCCESS"
            assert app.AsyncResult(sibling).get(timeout=T) == value
            reason = letter_for(app, task_id)
            assert "malformed workflow" in reason and part in reason, reason

        check()
    assert not [d for d in app.producer.dead_letters(10_000) if "unknown task" in d.reason]


# -- the client: refused before anything is published ---------------------------------
@pytest.fixture
def client(sqlite_app: Corekit) -> Corekit:
    @sqlite_app.task(name="echo")
    def echo(x: Any) -> Any:
        return x
    return sqlite_app


@pytest.mark.parametrize("build", [
    lambda app: signature({"args": []}, app=app).delay(),
    lambda app: signature({"task": "echo", "args": "xy"}, app=app).delay(),
    lambda app: signature({"task": "echo", "kwargs": [1]}, app=app).delay(),
    lambda app: signature({"task": 5}, app=app).delay(),
    lambda app: app.signature({"task": "echo", "options": "now"}).delay(),
    lambda app: app.tasks["echo"].apply_async((1,), link="abc"),
    lambda app: app.tasks["echo"].apply_async((1,), link={"args": []}),
    lambda app: app.tasks["echo"].apply_async((1,), link_error=[5]),
    lambda app: app.tasks["echo"].apply_async((1,), chain="abc"),
    lambda app: app.tasks["echo"].apply_async((1,), chord="abc"),
    lambda app: app.send_task("echo", (1,), link=[{"task": "echo", "options": {"link": "x"}}]),
    lambda app: app.tasks["echo"].s(1).set(countdown="soon").delay(),
    lambda app: chain("abc", app=app).delay(),
    lambda app: group("abc", app=app).delay(),
    lambda app: chain(app.tasks["echo"].s(1), "echo", app=app).delay(),
    lambda app: (app.tasks["echo"].s(1) | app.tasks["echo"].s()).apply_async(link="abc"),
    lambda app: signature({"task": "celery.map", "subtask_type": "xmap", "kwargs": [1]},
                          app=app).delay(),
    lambda app: signature({"task": "celery.chord", "subtask_type": "chord",
                           "kwargs": {"body": None}}, app=app).delay(),
    lambda app: chain([1, 2], app=app).delay(),
], ids=["no task", "args str", "kwargs list", "task int", "options str", "link str",
        "link no task", "link_error int", "chain str", "chord str", "nested link",
        "countdown str", "chain('abc')", "group('abc')", "chain with a str",
        "chain link str", "map kwargs a list", "chord without header", "chain of ints"])
def test_the_client_refuses_a_malformed_workflow(client: Corekit,
                                                 build: Callable[[Corekit], Any]) -> None:
    with pytest.raises(MalformedSignature) as info:
        build(client)
    assert "signature" in str(info.value)
    assert isinstance(info.value, (TypeError, ValueError))
    with start_worker(client):  # nothing of it was published
        assert client.tasks["echo"].delay("after").get(timeout=T) == "after"
    assert client.producer.dead_letters() == []


def test_a_follow_up_that_cannot_be_prepared_is_logged_and_skipped(
        app: Corekit, caplog: pytest.LogCaptureFixture) -> None:
    """Well formed, yet it cannot be sent (a serializer this worker does
    not have): the task keeps its SUCCESS, the sibling still goes, and the
    log says which follow-up was skipped."""
    sibling = f"sib-{uuid.uuid4().hex}"
    odd = {**good("odd"), "options": {"task_id": "odd", "serializer": "no-such-serializer"}}
    with start_worker(app):
        task_id = publish_raw(app, {"callbacks": [odd, good(sibling)]}, value="kept")
        assert app.AsyncResult(task_id).get(timeout=T) == "kept"
        assert app.AsyncResult(sibling).get(timeout=T) == "kept"
    assert [r for r in caplog.records if "cannot be sent" in r.getMessage()
            and task_id in r.getMessage() and "no-such-serializer" in r.getMessage()]
    assert letters_for(app, task_id) == []


def test_the_eager_path_refuses_a_malformed_link(client: Corekit) -> None:
    client.conf.task_always_eager = True
    with pytest.raises(MalformedSignature, match="link"):
        client.tasks["echo"].apply_async((1,), link="abc")
    with pytest.raises(MalformedSignature, match="link_error"):
        client.tasks["echo"].apply((1,), link_error=[{"args": []}])


def test_every_workflow_corekit_builds_passes_the_check(memory_app: Corekit) -> None:
    """No false alarms: the wire form of each canvas type, nested, with
    the options a caller may set, is a well-formed signature."""
    from datetime import datetime, timezone

    from corekit import chord, chunks
    from corekit.signature_check import signature_problem

    @memory_app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    @memory_app.task(name="xsum")
    def xsum(values: list[int]) -> int:
        return sum(values)

    step = add.s(1).set(countdown=1.5, expires=datetime.now(timezone.utc), priority=3,
                        queue="q", headers={"h": 1}, time_limit=10, retries=0)
    step.link(add.s(2))
    step.link_error(add.si(0, 0))
    workflows = [
        step, add.si(1, 1), chain(add.s(1, 1), add.s(2), group(add.s(3), add.s(4)), xsum.s()),
        group(add.s(i, i) for i in range(3)), chord([add.s(1, 1), add.s(2, 2)], xsum.s()),
        add.map([(1, 1)]), add.starmap([(1, 1)]), add.chunks([(1, 1)] * 4, 2),
        chord(group(add.s(1, 1), chain(add.s(2, 2), add.s(3))), chain(xsum.s(), add.s(1))),
        chunks(add.s(), [(1, 2)], 1),
    ]
    for sig in workflows:
        frozen = sig.clone()
        frozen.freeze()
        wire = json.loads(json.dumps(frozen, default=str))  # as it arrives (datetimes aside)
        wire_problem = signature_problem({**wire, "options": {
            k: v for k, v in wire["options"].items() if k != "expires"}}, "sig")
        assert signature_problem(frozen, "sig") is None and wire_problem is None, sig
