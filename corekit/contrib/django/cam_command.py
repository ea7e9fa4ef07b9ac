"""``corekit cam`` (``python manage.py corekit cam``): the Django camera,
saving snapshots of workers and tasks for the admin (`camera`)."""
from __future__ import annotations

import argparse
from typing import Any

CAMERA = "corekit.contrib.django.camera.Camera"


def setup(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    from corekit.cli.worker import _loglevel, _positive_float

    p = subparsers.add_parser(
        "cam", parents=parents, help="save snapshots of workers and tasks for Django's admin",
        description="Take snapshots of the workers' events into the Django project's database "
                    "(corekit events --camera with the Django camera): start workers with -E.")
    p.add_argument("-F", "--frequency", "--freq", type=_positive_float, default=1.0,
                   metavar="SECONDS", help="seconds between snapshots (default 1)")
    p.add_argument("-r", "--maxrate", default=None, metavar="RATE",
                   help="at most this many snapshots, e.g. 100/m")
    p.add_argument("-l", "--loglevel", default="WARNING", type=_loglevel,
                   help="debug, info, warning, error or critical (default: warning)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, app: Any) -> int:
    from corekit.cli import events

    args.dump, args.camera = False, CAMERA
    return int(events.run(args, app))
