"""Send the demo's tasks to a running worker and print what comes back."""
from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta, timezone

from demo_tasks import add, divide, flaky, mul, roll_dice, xsum

from corekit import chord, group, states


def main() -> int:
    t0 = time.perf_counter()
    print(f"add.delay(2, 2).get(timeout=10)          -> {add.delay(2, 2).get(timeout=10)}")
    print(f"mul.apply_async((6, 7)).get()            -> {mul.apply_async((6, 7)).get(timeout=10)}")
    delayed = add.apply_async((40, 2), countdown=1)
    at = datetime.now(timezone.utc) + timedelta(seconds=1)
    scheduled = mul.apply_async((3, 3), eta=at)
    print(f"add (countdown=1s) state now             -> {delayed.state}")
    print(f"add (countdown=1s).get()                 -> {delayed.get(timeout=10)}")
    print(f"mul (eta=now+1s).get()                   -> {scheduled.get(timeout=10)}")
    print(f"flaky.delay(3).get()                     -> {flaky.delay(3).get(timeout=20)}")
    print(f"(add.s(4, 4) | mul.s(8))().get()         -> {(add.s(4, 4) | mul.s(8))().get(timeout=10)}")
    print(f"group(add.s(i, i) for i in range(10))()  -> "
          f"{group(add.s(i, i) for i in range(10))().get(timeout=10)}")
    print(f"chord((add.s(i, i) ...), xsum.s())()     -> "
          f"{chord((add.s(i, i) for i in range(10)), xsum.s())().get(timeout=10)}")
    failed = divide.delay(1, 0)
    err = failed.get(timeout=20, propagate=False)
    print(f"divide.delay(1, 0) state, error          -> {failed.state}, {err!r}")
    try:
        failed.get(timeout=1)
    except ZeroDivisionError as exc:
        print(f"divide.delay(1, 0).get() raises          -> ZeroDivisionError({exc})")
    zipped = add.apply_async((1, 1), compression="zlib", serializer="msgpack")
    print(f"add with msgpack + zlib                  -> {zipped.get(timeout=10)}")
    print(f"roll_dice.delay()                        -> {roll_dice.delay().get(timeout=10)}")

    n = 1000
    start = time.perf_counter()
    results = [add.delay(i, i) for i in range(n)]
    sent = time.perf_counter() - start
    values = [r.get(timeout=60) for r in results]
    done = time.perf_counter() - start
    ok = values == [2 * i for i in range(n)]
    print()
    print("summary")
    print(f"  {n} add tasks: sent in {sent:.2f}s ({n / sent:,.0f}/s), all results back in "
          f"{done:.2f}s ({n / done:,.0f}/s), all correct: {ok}")
    print(f"  states: failure={failed.state} success={delayed.state}, "
          f"unknown id -> {add.AsyncResult('no-such-id').state}")
    print(f"  total demo time {time.perf_counter() - t0:.2f}s")
    return 0 if ok and failed.state == states.FAILURE else 1


if __name__ == "__main__":
    sys.exit(main())
