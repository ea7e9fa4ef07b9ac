"""``corekit spool-stats``: how many messages wait in each queue's spool."""
from __future__ import annotations

import argparse
import sys
from typing import Any


def setup_spool_stats(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("spool-stats", parents=parents,
                              help="count the messages waiting in each spool queue")
    p.add_argument("-Q", "--queues", default=None,
                   help="comma-separated queues (default: the app's queues)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, app: Any) -> int:
    if not str(app.conf.broker_url or "").startswith("spool://"):
        print(f"Error: spool-stats needs a spool:// broker, not {app.conf.broker_url!r}",
              file=sys.stderr)
        return 1
    transport = app.connection()
    queues = (args.queues or "").split(",") if args.queues else app.queues.names()
    for queue in queues:
        print(f"{queue}: {transport.queue_size(queue)}")
    return 0
