"""A schedule store used from another OS process, for the contract suite.

``python schedule_store_driver.py SCHEME URL put NAME DEFINITION`` puts one
entry and exits.

``python schedule_store_driver.py SCHEME URL claim HOLDER SEED BATCH`` reads
runs (``name scheduled_at task_id`` per line) from stdin up to a line
``go``, then claims them in batches of BATCH, in an order shuffled by SEED,
and prints the names it claimed as JSON.  The runs are read before ``go`` so
that two processes start claiming at the same moment.

``python schedule_store_driver.py SCHEME URL take SEND_ID SEED`` reads runs
the same way and asks `take_runs` for them, as a worker would for a copy of
send SEND_ID, in batches of 20 in an order shuffled by SEED; it prints the
names it took.
"""
from __future__ import annotations

import json
import random
import sys

from corekit.pluginmanager import default_manager
from corekit.schedules.store import Run


def main(scheme: str, url: str, command: str, *args: str) -> None:
    if scheme == "django-db":  # Django set up on the contract suite's database
        import os
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from django_setup import set_django_up

        set_django_up(os.environ["COREKIT_CONTRACT_DJANGO"], migrate=False)
    store = default_manager().get("schedule_stores", scheme)(url)
    try:
        if command == "put":
            store.put(args[0], args[1])
        elif command == "claim":
            claim(store, args[0], int(args[1]), int(args[2]))
        elif command == "take":
            take(store, args[0], int(args[1]))
        else:
            raise SystemExit(f"unknown command {command!r}")
    finally:
        store.close()


def read_runs(seed: int) -> list[Run]:
    runs = []
    for line in sys.stdin:
        if line.strip() == "go":
            break
        name, at, task_id = line.split()
        runs.append(Run(name, float(at), task_id))
    random.Random(seed).shuffle(runs)
    return runs


def claim(store, holder: str, seed: int, batch: int) -> None:  # type: ignore[no-untyped-def]
    runs = read_runs(seed)
    claimed: list[str] = []
    for start in range(0, len(runs), batch):
        claimed.extend(run.name for run in store.claim_runs(holder, runs[start:start + batch]))
    print(json.dumps(claimed), flush=True)


def take(store, send_id: str, seed: int) -> None:  # type: ignore[no-untyped-def]
    runs = read_runs(seed)
    taken = []
    for start in range(0, len(runs), 20):  # a worker asks once per fetched batch
        batch = runs[start:start + 20]
        answers = store.take_runs([(run.name, run.scheduled_at, send_id) for run in batch])
        taken += [run.name for run, ok in zip(batch, answers) if ok]
    print(json.dumps(taken), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
