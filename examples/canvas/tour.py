"""Every canvas example of the canvas guide (docs/guide/canvas.md), run against a worker.

    cd examples/canvas && corekit -A canvas_tasks worker -c 4   # one shell
    cd examples/canvas && python tour.py                        # another
"""
from __future__ import annotations

from canvas_tasks import add, double_later, fail, log_error, mul, tsum, xsum

from corekit import ChordError, chain, chord, group, signature
from corekit.result import GroupResult


def show(label: str, value: object) -> None:
    print(f"{label:<58} -> {value}")


T = 20  # seconds to wait for any one result

show("signature('canvas_tasks.add', args=(2, 2), countdown=1)",
     signature("canvas_tasks.add", args=(2, 2), countdown=1))
show("add.s(2).delay(4).get()", add.s(2).delay(4).get(timeout=T))
s = add.signature((2, 2), countdown=10)
show("s.apply_async(countdown=0).get()", s.apply_async(countdown=0).get(timeout=T))
linked = add.apply_async((2, 2), link=mul.s(10))
linked.get(timeout=T)  # a task's meta lists its children once it is done
show("add.apply_async((2, 2), link=mul.s(10)): children",
     [child.get(timeout=T) for child in linked.children])
try:
    fail.apply_async(("boom",), link_error=log_error.s()).get(timeout=T)
except ValueError as exc:
    show("fail.apply_async(('boom',), link_error=...).get()", f"raises {exc!r}")
show("chain(add.s(2, 2), add.s(4), add.s(8))().get()",
     chain(add.s(2, 2), add.s(4), add.s(8))().get(timeout=T))
show("(add.s(2, 2) | add.s(4) | add.s(8))().get()", (add.s(2, 2) | add.s(4) | add.s(8))().get(timeout=T))
show("chain(add.s(4) | mul.s(8))(4).get()", chain(add.s(4) | mul.s(8))(4).get(timeout=T))
res = (add.si(2, 2) | add.si(4, 4) | add.si(8, 8))()
show("res.get(), res.parent.get(), res.parent.parent.get()",
     (res.get(timeout=T), res.parent.get(timeout=T), res.parent.parent.get(timeout=T)))
g = group(add.s(i, i) for i in range(10))()
show("group(add.s(i, i) for i in range(10))().get()", g.get(timeout=T))
show("g.ready(), g.completed_count()", (g.ready(), g.completed_count()))
g.save()
show("GroupResult.restore(g.id).get()", GroupResult.restore(g.id).get(timeout=T))
show("group(add.s(i) for i in range(10))(10).get()",
     group(add.s(i) for i in range(10))(10).get(timeout=T))
partial = group(add.s(1, 1), fail.s("no"), add.s(2, 2))()
show("group with a failure: join(propagate=False)",
     partial.join(timeout=T, propagate=False))
show("chord((add.s(i, i) for i in range(10)), xsum.s())().get()",
     chord((add.s(i, i) for i in range(10)), xsum.s())().get(timeout=T))
show("(group(add.s(i, i) for i in range(10)) | xsum.s())().get()",
     (group(add.s(i, i) for i in range(10)) | xsum.s())().get(timeout=T))
try:
    chord([add.s(1, 1), fail.s("header")], xsum.s())().get(timeout=T)
except ChordError as exc:
    show("chord with a failing header task", f"raises ChordError({str(exc)[:32]}...)")
show("tsum.map([range(10), range(100)]).delay().get()",
     tsum.map([list(range(10)), list(range(100))]).delay().get(timeout=T))
show("add.starmap([(2, 2), (4, 4)]).delay().get()", add.starmap([(2, 2), (4, 4)]).delay().get(timeout=T))
show("add.chunks(zip(range(100), range(100)), 10)().get()[0]",
     add.chunks(zip(range(100), range(100)), 10)().get(timeout=T)[0])
show("len(add.chunks(zip(range(100), range(100)), 10).group())",
     len(add.chunks(zip(range(100), range(100)), 10).group()))
show("chord(group(chain(add.s(1, 1), mul.s(2)), add.s(3, 3)), xsum.s())()",
     chord(group(chain(add.s(1, 1), mul.s(2)), add.s(3, 3)), xsum.s())().get(timeout=T))
show("chain(add.s(1, 1), chord([add.s(1), add.s(2)], xsum.s()), mul.s(10))()",
     chain(add.s(1, 1), chord([add.s(1), add.s(2)], xsum.s()), mul.s(10))().get(timeout=T))
show("double_later.delay(21).get()  (Task.replace)", double_later.delay(21).get(timeout=T))
last = chain(add.s(1, 1), add.s(2), add.s(3))()
last.get(timeout=T)
show("chain's first result: collect()",
     [value for _, value in last.parent.parent.collect(timeout=T)])
