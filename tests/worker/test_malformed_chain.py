"""A chain the worker leaves out of a message (one of its steps is not a
well-formed signature) fails its well-formed steps: each step whose
result id is known (``options.task_id``) gets FAILURE with a
MalformedSignature naming the bad part, so nobody waits on them forever;
the task of the message keeps its own outcome."""
from __future__ import annotations

import uuid
from typing import Any

import pytest

from corekit import Corekit, states
from corekit.exceptions import MalformedSignature
from corekit.testing import start_worker
from test_canvas_input import app, good, letter_for, publish_raw  # noqa: F401 (app: fixture)

T = 15


def ids(n: int) -> list[str]:
    return [f"step-{uuid.uuid4().hex}" for _ in range(n)]


def test_the_well_formed_steps_of_a_left_out_chain_fail(app: Corekit) -> None:
    first, last = ids(2)
    # the wire's chain is in reverse: the next step is the last item
    chain = [good(last), {"task": "echo", "args": "not a list", "options": {}}, good(first)]
    with start_worker(app):
        task_id = publish_raw(app, {"chain": chain}, value="kept")
        for step in (first, last):  # PENDING forever before
            with pytest.raises(MalformedSignature, match=r"chain\[1\]\.args") as info:
                app.AsyncResult(step).get(timeout=T)
            assert task_id in str(info.value)
            assert app.AsyncResult(step).state == states.FAILURE
        assert app.AsyncResult(task_id).get(timeout=T) == "kept"
        assert app.AsyncResult(task_id).state == states.SUCCESS
        assert "chain[1].args" in letter_for(app, task_id)


def test_group_members_and_a_chord_body_in_a_left_out_chain_fail(app: Corekit) -> None:
    member_a, member_b, body = ids(3)
    group_step = {**good("g"), "task": "celery.group", "subtask_type": "group",
                  "kwargs": {"tasks": [good(member_a), good(member_b)]}}
    chord_step = {**good("c"), "task": "celery.chord", "subtask_type": "chord",
                  "kwargs": {"header": [good(f"h-{uuid.uuid4().hex}")], "body": good(body)}}
    chain = [chord_step, group_step, 5]
    with start_worker(app):
        task_id = publish_raw(app, {"chain": chain}, value=1)
        for step in (member_a, member_b, body):
            with pytest.raises(MalformedSignature, match=r"chain\[2\]: a signature is a dict"):
                app.AsyncResult(step).get(timeout=T)
        assert app.AsyncResult(task_id).get(timeout=T) == 1


def test_a_chain_that_is_not_a_list_stores_nothing_and_the_worker_goes_on(
        app: Corekit) -> None:
    with start_worker(app):
        task_id = publish_raw(app, {"chain": {"task": "echo"}}, value=2)
        assert app.AsyncResult(task_id).get(timeout=T) == 2
        assert "chain" in letter_for(app, task_id)
        assert app.AsyncResult(publish_raw(app, None, value=3)).get(timeout=T) == 3


def test_a_chord_that_a_left_out_chain_was_part_of_fails_its_body(app: Corekit) -> None:
    from corekit.result import AsyncResult, GroupResult

    last, body, group_id = ids(3)
    body_sig = {**good(body), "chord_size": 1}
    app.backend.save_group(group_id, GroupResult(group_id, [AsyncResult(last, app=app)],
                                                 app=app))
    chain = [{**good(last), "options": {"task_id": last, "group_id": group_id,
                                        "chord": body_sig}},
             {"task": "echo", "kwargs": [1]}]
    with start_worker(app):
        task_id = publish_raw(app, {"chain": chain}, value=1)
        with pytest.raises(Exception, match=r"MalformedSignature: .*chain\[1\]\.kwargs"):
            app.AsyncResult(body).get(timeout=T)  # the join never came before
        assert app.AsyncResult(body).state == states.FAILURE
        assert app.AsyncResult(task_id).get(timeout=T) == 1
