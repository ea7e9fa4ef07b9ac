"""``corekit cam`` (``python manage.py corekit cam``): the Django camera,
saving snapshots of workers and tasks for the admin (`camera`)."""
from __future__ import annotations

import argparse
from typing import Any

CAMERA = "corekit.contrib.django.camera.Camera"


def setup(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    from corekit.cli.daemon_options import add_daemon_options
    from corekit.cli.events import add_camera_options

    p = subparsers.add_parser(
        "cam", parents=parents, help="save snapshots of workers and tasks for Django's admin",
        description="Take snapshots of the workers' events into the Django project's database "
                    "(corekit events --camera with the Django camera): start workers with -E.")
    add_camera_options(p)
    add_daemon_options(p)  # a service like corekit events: --detach, --pidfile, --logfile...
    p.set_defaults(func=run)


def run(args: argparse.Namespace, app: Any) -> int:
    from corekit.cli import events

    args.dump, args.camera = False, CAMERA
    return int(events.run(args, app))
