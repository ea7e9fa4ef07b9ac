"""Canvas: workflows nested in workflows.  The nestings of the user guide
run on every transport (``any_app``), the rest on the memory transport."""
from __future__ import annotations

import pytest

from canvas_helpers import CustomError, T, make_tasks
from corekit import Corekit, chain, chord, group, states
from corekit.exceptions import ChordError
from corekit.result import GroupResult
from corekit.testing import start_worker


def test_nested_workflows(any_app: Corekit) -> None:
    t = make_tasks(any_app)
    with start_worker(any_app, concurrency=4):
        # a chain inside a group inside a chord: (1 + 1) * 2 + (3 + 3)
        res = chord(group(chain(t.add.s(1, 1), t.mul.s(2)), t.add.s(3, 3)), t.xsum.s())()
        assert res.get(timeout=T) == 10
        # a chord inside a chain: ((2 + 1) + (2 + 2)) * 10
        res = chain(t.add.s(1, 1), chord([t.add.s(1), t.add.s(2)], t.xsum.s()), t.mul.s(10))()
        assert res.get(timeout=T) == 70
        # a group at the end of a chain
        assert (t.add.s(1, 1) | group(t.add.s(1), t.add.s(2)))().get(timeout=T) == [3, 4]
        # a group in the middle of a chain becomes a chord
        assert (t.add.s(1, 1) | group(t.add.s(1), t.add.s(2)) | t.xsum.s())().get(timeout=T) == 7
        # a group of chains
        assert group(t.add.s(i, i) | t.mul.s(10) for i in range(3))().get(timeout=T) == [0, 20, 40]


def test_chains_of_chains(memory_app: Corekit) -> None:
    t = make_tasks(memory_app)
    with start_worker(memory_app, concurrency=4):
        res = chain(chain(t.add.s(1, 1), t.add.s(2)), chain(t.add.s(3), t.add.s(4)))()
        assert res.get(timeout=T) == 11
        assert [res.parent.get(timeout=T), res.parent.parent.get(timeout=T),
                res.parent.parent.parent.get(timeout=T)] == [7, 4, 2]
        res = ((t.sub.s(20, 1) | t.sub.s(2)) | (t.sub.s(3) | t.sub.s(4)))()
        assert res.get(timeout=T) == 10
        assert chain(t.sub.s(1) | t.sub.s(2))(10).get(timeout=T) == 7
        # a group of partial chains gets the argument at each chain's head
        assert group(t.add.s(1) | t.mul.s(2), t.add.s(2) | t.mul.s(3))(5).get(timeout=T) \
            == [12, 21]


def test_chords_in_chains(memory_app: Corekit) -> None:
    t = make_tasks(memory_app)
    with start_worker(memory_app, concurrency=4):
        # a chord followed by a task
        res = (chord([t.add.s(1, 1), t.add.s(2, 2)], t.xsum.s()) | t.mul.s(3))()
        assert res.get(timeout=T) == 18
        # two chords in a row: the second's header tasks get the first's result
        res = chain(chord([t.add.s(1, 1)], t.xsum.s()),
                    chord([t.sub.s(1), t.sub.s(2)], t.identity.s()))()
        assert res.get(timeout=T) == [1, 0]
        # a group, then two tasks: the group becomes a chord
        res = (group(t.add.s(1, 1), t.add.s(2, 2)) | t.xsum.s() | t.mul.s(2))()
        assert res.get(timeout=T) == 12
        # a chord whose body is a chain
        assert chord([t.add.s(1, 1), t.add.s(2, 2)], t.xsum.s() | t.mul.s(2))().get(timeout=T) \
            == 12
        # a chain of groups
        res = chain(t.add.s(1, 1) | t.mul.s(3), group(t.xsum.si([1, 2]), t.add.s(4)))()
        assert res.get(timeout=T) == [3, 10]


def test_chords_in_groups_and_chords(memory_app: Corekit) -> None:
    t = make_tasks(memory_app)
    with start_worker(memory_app, concurrency=4):
        res = group(chord([t.add.s(1, 1), t.add.s(2, 2)], t.xsum.s()),
                    chord([t.add.s(3, 3)], t.xsum.s()), t.add.s(5, 5))()
        assert isinstance(res, GroupResult)
        assert res.get(timeout=T) == [6, 6, 10]
        # a chord in a chord's header
        res = chord([chord([t.add.s(1, 1), t.add.s(2, 2)], t.xsum.s()), t.add.s(3, 3)],
                    t.xsum.s())()
        assert res.get(timeout=T) == 12
        # chains of chords in a chord's header
        res = chord([chord([t.add.s(1, 1)], t.xsum.s()) | t.mul.s(10),
                     t.add.s(1, 1) | t.mul.s(2)], t.identity.s())()
        assert res.get(timeout=T) == [20, 4]
        # a group as a chord's header, given as a group
        assert chord(group(t.add.s(i, i) for i in range(4)), t.xsum.s())().get(timeout=T) == 12


def test_replace_inside_workflows(memory_app: Corekit) -> None:
    t = make_tasks(memory_app)
    with start_worker(memory_app, concurrency=4):
        assert group(t.replacer.s(1), t.replacer.s(2), t.add.s(1, 1))().get(timeout=T) \
            == [2, 4, 2]
        assert chord([t.replacer.s(1), t.add.s(1, 1)], t.xsum.s())().get(timeout=T) == 4
        assert chord([t.add.s(1, 1), t.add.s(2, 2)], t.replacer.s())().get(timeout=T) \
            == [2, 4, 2, 4]
        assert (t.replace_with_chain.s(1) | t.replacer.s())().get(timeout=T) == 40
        res = chain(t.add.s(1, 1), chord([t.replacer.s(), t.add.s(1)], t.xsum.s()),
                    t.replacer.s())()
        assert res.get(timeout=T) == 14


def test_links_on_workflows(memory_app: Corekit) -> None:
    """A callback linked to a chain runs after its last task, with its result."""
    t = make_tasks(memory_app)
    with start_worker(memory_app, concurrency=4):
        res = (t.add.s(1, 1) | t.mul.s(5)).apply_async(link=t.record.s())
        assert res.get(timeout=T) == 10
        [child] = res.children
        assert child.get(timeout=T) == 10 and t.log == [("record", 10)]


def test_failures_inside_nested_workflows(memory_app: Corekit) -> None:
    t = make_tasks(memory_app)
    with start_worker(memory_app, concurrency=4):
        # a failing task in a group in the middle of a chain: the chord fails
        res = (t.add.s(1, 1) | group(t.fail.s(), t.add.s(1)) | t.record.s())()
        with pytest.raises(ChordError) as info:
            res.get(timeout=T)
        [failed_id] = [e[1] for e in t.log if e[0] == "fail"]
        assert failed_id in str(info.value)
        # a failing task in a chain in a chord's header
        res = chord([t.add.s(1, 1) | t.fail.s(), t.add.s(2, 2)], t.record.s())()
        with pytest.raises(ChordError):
            res.get(timeout=T)
        assert res.state == states.FAILURE
        # ... where the chain fails before its last task (the one that counts
        # toward the chord): the chain's failure is counted in its place
        res = chord([t.fail.s() | t.add.s(1), t.add.s(2, 2)], t.record.s())()
        with pytest.raises(ChordError, match="CustomError"):
            res.get(timeout=T)
        # a chain inside a group: the failure stays with its member
        res = group(t.add.s(1, 1) | t.fail.s(), t.add.s(2, 2))()
        joined = res.join(timeout=T, propagate=False)
        assert isinstance(joined[0], CustomError) and joined[1] == 4
        assert t.add.delay(0, 0).get(timeout=T) == 0
        assert not [e for e in t.log if e[0] == "record"]
