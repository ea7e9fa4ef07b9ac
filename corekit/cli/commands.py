"""``corekit call``, ``result``, ``purge``, ``plugins`` and ``dlq``."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from corekit import states
from corekit.cli.output import printable


def fromisoformat(text: str) -> Any:
    """argparse ``type`` of ``--eta``: ``datetime.fromisoformat``, with
    datetime imported when a value is given, not at ``--help``."""
    from datetime import datetime

    return datetime.fromisoformat(text)


def json_arg(kind: type, what: str) -> Any:
    def parse(text: str) -> Any:
        import json

        try:
            value = json.loads(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{what} must be JSON: {exc}") from None
        if not isinstance(value, kind):
            raise argparse.ArgumentTypeError(f"{what} must be a JSON {kind.__name__}")
        return value
    return parse


# -- call ---------------------------------------------------------------------
def setup_call(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("call", parents=parents, help="send a task by name",
                              description="Send a task by name and print its id.")
    p.add_argument("name", help="the task's registered name, e.g. proj.tasks.add")
    p.add_argument("-a", "--args", type=json_arg(list, "--args"), default=[],
                   help="positional arguments as a JSON list, e.g. '[2, 2]'")
    p.add_argument("-k", "--kwargs", type=json_arg(dict, "--kwargs"), default={},
                   help="keyword arguments as a JSON object")
    p.add_argument("--countdown", type=float, default=None, help="seconds to wait first")
    p.add_argument("--eta", type=fromisoformat, default=None,
                   help="ISO-8601 time to run at (naive means UTC)")
    p.add_argument("--expires", type=float, default=None,
                   help="seconds after which the task is dropped if not started")
    p.add_argument("-Q", "--queue", default=None, help="default: task_routes decide")
    p.add_argument("--routing-key", default=None)
    p.add_argument("--exchange", default=None)
    p.add_argument("--serializer", default=None)
    p.add_argument("--compression", default=None)
    p.add_argument("--priority", type=int, default=None)
    p.add_argument("--unregistered", action="store_true",
                   help="send it even though the app (-A) registers no task of that name "
                        "(a worker with other code runs it)")
    p.set_defaults(func=run_call)


def run_call(args: argparse.Namespace, app: Any) -> int:
    from corekit.cli.appload import app_spec

    # the app named (-A, COREKIT_APP, the config file) knows its tasks; `default` knows none
    if (getattr(args, "app", None) or app_spec()) and not args.unregistered:
        check_registered(app, args.name)
    result = app.send_task(args.name, args.args, args.kwargs, countdown=args.countdown,
                           eta=args.eta, expires=args.expires, queue=args.queue,
                           routing_key=args.routing_key, exchange=args.exchange,
                           serializer=args.serializer, compression=args.compression,
                           priority=args.priority)
    print(result.id)
    return 0


def check_registered(app: Any, name: str) -> None:
    """ValueError naming the closest registered names when the loaded app
    has no task *name*: sent anyway, it would wait for a worker that knows
    it, and the caller for a result that never comes."""
    import difflib

    app.discover_tasks()
    known = sorted(app.tasks)
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise ValueError(f"unknown task {name!r}: app {app.main!r} registers no task of that "
                         f"name{hint}; --unregistered sends it anyway")


# -- result --------------------------------------------------------------------
def setup_result(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("result", parents=parents, help="show a task's result",
                              description="Print a task's result (or its state while it "
                                          "is not ready).")
    p.add_argument("task_id")
    p.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                   help="wait up to SECONDS for the task to be ready")
    p.set_defaults(func=run_result)


def run_result(args: argparse.Namespace, app: Any) -> int:
    result = app.AsyncResult(args.task_id)
    if args.wait is not None:
        result.get(timeout=args.wait, propagate=False)
    state = result.state
    if state == states.SUCCESS:
        value = result.result
        import json

        print(json.dumps(value) if _is_json(value) else printable(repr(value)))
        return 0
    if state in states.EXCEPTION_STATES:
        tb = getattr(args, "traceback", False) and result.traceback
        print(printable(tb, newlines=True) if tb else printable(f"{state}: {result.result!r}"))
        return 1
    print(printable(state))
    return 0


def _is_json(value: Any) -> bool:
    import json

    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


# -- purge ---------------------------------------------------------------------
def setup_purge(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("purge", parents=parents, help="delete waiting messages",
                              description="Delete every waiting message from queues.")
    p.add_argument("-Q", "--queues", default=None,
                   help="comma-separated queues (default: task_default_queue)")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=run_purge)


def run_purge(args: argparse.Namespace, app: Any) -> int:
    queues = [q for q in (args.queues or app.conf.task_default_queue).split(",") if q]
    if not args.force:
        if not sys.stdin.isatty():
            print("Error: refusing to purge without confirmation: use -f", file=sys.stderr)
            return 1
        answer = input(f"Delete every waiting message in {', '.join(queues)}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing purged.")
            return 0
    count = app.producer.purge(queues)
    print(f"Purged {count} message{'s' if count != 1 else ''} from "
          f"{len(queues)} known task queue{'s' if len(queues) != 1 else ''}.")
    return 0


# -- plugins -------------------------------------------------------------------
def setup_plugins(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("plugins", parents=parents, help="list installed plugins",
                              description="List installed plugins and what each provides.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_plugins)


def run_plugins(args: argparse.Namespace, app: Any) -> int:
    infos = sorted(app.plugins.plugins.values(), key=lambda i: i.name)
    if args.json:
        import json

        print(json.dumps([i.as_dict() for i in infos], indent=2))
        return 0
    rows = [(i.name, i.distribution, i.version,
             "; ".join([f"{kind.replace('_', ' ')}: {', '.join(names)}"
                        for kind, names in i.provides.items() if names]
                       + ([i.status] if i.status else [])) or "hooks only")
            for i in infos]
    header = ("plugin", "distribution", "version", "provides")
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(3)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3])
    return 0


# -- dlq -----------------------------------------------------------------------
def setup_dlq(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("dlq", parents=parents, help="see and replay dead letters",
                              description="Messages a worker could not process.")
    sub = p.add_subparsers(dest="dlq_command", metavar="ACTION")
    sub.required = True
    ls = sub.add_parser("list", parents=parents, help="list dead letters")
    ls.add_argument("--limit", type=int, default=100)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_dlq_list)
    rp = sub.add_parser("replay", parents=parents, help="put dead letters back on their queue")
    rp.add_argument("ids", nargs="*", help="dead-letter ids (see dlq list)")
    rp.add_argument("--all", action="store_true", help="replay every dead letter")
    rp.set_defaults(func=run_dlq_replay)


def run_dlq_list(args: argparse.Namespace, app: Any) -> int:
    letters = app.producer.dead_letters(args.limit)
    if args.json:
        import json

        print(json.dumps([{"id": d.id, "queue": d.message.queue, "reason": d.reason,
                           "task": d.message.headers.get("task")
                           if isinstance(d.message.headers, dict) else None,
                           "task_id": d.message.headers.get("id")
                           if isinstance(d.message.headers, dict) else None,
                           "failed_at": d.failed_at} for d in letters], indent=2))
        return 0
    if not letters:
        print("The dead-letter queue is empty.")
    for d in letters:  # every field as the producer or broker gave it: escaped
        headers = d.message.headers if isinstance(d.message.headers, dict) else {}
        print("\t".join(printable(field) for field in (
            d.id, d.message.queue, f"{headers.get('task')}[{headers.get('id')}]", d.reason)))
    return 0


def run_dlq_replay(args: argparse.Namespace, app: Any) -> int:
    if not args.ids and not args.all:
        print("Error: name dead-letter ids to replay, or use --all", file=sys.stderr)
        return 2
    ids = None if args.all else [int(i) if i.isdigit() else i for i in args.ids]
    count = app.producer.replay_dead_letters(ids)
    print(f"Replayed {count} message{'s' if count != 1 else ''}.")
    return 0
