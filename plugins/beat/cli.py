"""``corekit beat``: run a beat, or ``list|add|remove|enable|disable`` periodic tasks."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from corekit.cli.commands import json_arg
from corekit.cli.daemon_options import add_daemon_options


def _iso(text: str) -> Any:
    """argparse ``type`` of ``--at`` (argparse names a ValueError's function instead)."""
    from corekit.cli.commands import fromisoformat

    try:
        return fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time, e.g. 2030-01-01T09:00:00+01:00") from None


MISSED = ("once", "all", "none")


def setup(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "beat", parents=parents, help="run the periodic-task scheduler, or manage its tasks",
        description="Without a subcommand, run a beat: it fires the app's periodic tasks. "
                    "Run as many as you like (or -B workers): they share one schedule store "
                    "and each run fires once.")
    p.add_argument("-l", "--loglevel", default="INFO", type=_loglevel,
                   help="log level (default: info)")
    p.add_argument("-n", "--hostname", default=None, help="this beat's name in the logs")
    p.add_argument("--lease-timeout", type=float, default=None, metavar="SECONDS",
                   help="leader lease (beat_lease_timeout)")
    p.add_argument("--missed", choices=MISSED, default=None,
                   help="what to do with runs missed while no beat ran (beat_missed_runs)")
    add_daemon_options(p)
    p.set_defaults(func=run_beat)
    sub = p.add_subparsers(dest="beat_command", metavar="{list,add,remove,enable,disable}")
    ls = sub.add_parser("list", parents=parents, help="list periodic tasks with their next and last runs")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=run_list)
    add = sub.add_parser("add", parents=parents, help="add (or with --replace change) a periodic task")
    add.add_argument("name")
    add.add_argument("task", help="the task's registered name, e.g. proj.tasks.report")
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--every", type=float, metavar="SECONDS", help="an interval")
    when.add_argument("--cron", metavar="'M H DoM MoY DoW'",
                      help="a crontab: minute hour day-of-month month day-of-week")
    when.add_argument("--at", type=_iso, metavar="ISO-8601",
                      help="once, at this time (naive means UTC)")
    when.add_argument("--solar", nargs=3, metavar=("EVENT", "LAT", "LON"),
                      help="at a solar event, e.g. sunrise 51.5 -0.12")
    add.add_argument("-a", "--args", type=json_arg(list, "--args"), default=[],
                     help="positional arguments as a JSON list")
    add.add_argument("-k", "--kwargs", type=json_arg(dict, "--kwargs"), default={},
                     help="keyword arguments as a JSON object")
    add.add_argument("-o", "--options", type=json_arg(dict, "--options"), default={},
                     help="send options as a JSON object, e.g. '{\"queue\": \"hipri\"}'")
    add.add_argument("--tz", default=None, help="zone a --cron schedule reads (IANA name)")
    add.add_argument("--missed", choices=MISSED, default=None, help="missed-run policy")
    add.add_argument("--disabled", action="store_true", help="add it disabled")
    add.add_argument("--replace", action="store_true", help="change it if it exists")
    add.set_defaults(func=run_add)
    for name, func, text in (("remove", run_remove, "delete a periodic task"),
                             ("enable", run_enable, "enable a periodic task"),
                             ("disable", run_disable, "disable a periodic task")):
        cmd = sub.add_parser(name, parents=parents, help=text)
        cmd.add_argument("name")
        cmd.set_defaults(func=func)


def _loglevel(text: str) -> str:
    from corekit.cli.worker import _loglevel as check

    return check(text)


def run_beat(args: argparse.Namespace, app: Any) -> int:
    import signal
    import socket

    from corekit.cli.daemon import log_format, start_service
    from corekit.log import setup_logging
    from corekit.plugins.beat.service import Beat

    setup_logging(args.loglevel, fmt=log_format(args, app))
    if args.lease_timeout is not None:
        app.conf.beat_lease_timeout = args.lease_timeout
    if args.missed is not None:
        app.conf.beat_missed_runs = args.missed
    app.finalize()
    start_service(args, app, args.hostname or f"beat@{socket.gethostname()}", args.loglevel)
    beat = Beat(app, name=args.hostname)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: beat.stop())
    print(f"corekit beat {beat.holder}: store {_masked(beat.store.url)}; "
          f"{len(app.conf.beat_schedule or {})} configured periodic task(s)", flush=True)
    try:
        beat.run()
    finally:
        beat.store.close()
    return 0


def _masked(url: str) -> str:
    from corekit.transport import mask_url

    return mask_url(url)


def _schedule(args: argparse.Namespace) -> Any:
    from corekit.schedules import clocked, crontab, schedule

    if args.every is not None:
        return schedule(args.every)
    if args.at is not None:
        return clocked(args.at)
    if args.solar is not None:
        from corekit.schedules.solar import solar

        event, lat, lon = args.solar
        return solar(event, _degrees("LAT", lat), _degrees("LON", lon))
    fields = args.cron.split()
    if len(fields) != 5:
        raise ValueError(f"--cron {args.cron!r}: needs 5 fields (minute hour day-of-month "
                         f"month day-of-week), got {len(fields)}")
    minute, hour, dom, month, dow = fields
    return crontab(minute, hour, day_of_week=dow, day_of_month=dom, month_of_year=month)


def _degrees(what: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"--solar {what} {text!r}: must be a number of degrees") from None


def _tasks(app: Any) -> Any:
    from corekit.schedules.periodic import PeriodicTasks

    return PeriodicTasks(app)


def run_add(args: argparse.Namespace, app: Any) -> int:
    try:
        sched = _schedule(args)
    except (TypeError, ValueError) as exc:
        return _fail(f"periodic task {args.name!r}: {exc}")
    with _tasks(app) as tasks:
        entry = tasks.add(args.name, args.task, sched, args.args, args.kwargs, args.options,
                          enabled=not args.disabled, missed=args.missed, tz=args.tz,
                          replace=args.replace)
    from corekit.schedules.timeline import effective_schedule

    print(f"added {entry.name}: {entry.task} "
          f"{effective_schedule(entry, app.conf.timezone)!r}")
    return 0


def run_remove(args: argparse.Namespace, app: Any) -> int:
    with _tasks(app) as tasks:
        if not tasks.remove(args.name):
            return _fail(f"no periodic task called {args.name!r}")
    print(f"removed {args.name}")
    return 0


def run_enable(args: argparse.Namespace, app: Any) -> int:
    with _tasks(app) as tasks:
        tasks.enable(args.name)
    print(f"enabled {args.name}")
    return 0


def run_disable(args: argparse.Namespace, app: Any) -> int:
    with _tasks(app) as tasks:
        tasks.disable(args.name)
    print(f"disabled {args.name}")
    return 0


def run_list(args: argparse.Namespace, app: Any) -> int:
    from corekit.plugins.beat.listing import render

    with _tasks(app) as tasks:
        rows = tasks.list()
        lease = tasks.store.lease()
    for line in render(rows, lease, as_json=args.json):
        print(line)
    return 0


def _fail(message: str) -> int:
    print(f"Error: {message}", file=sys.stderr)
    return 1
