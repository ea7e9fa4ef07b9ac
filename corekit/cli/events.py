"""``corekit events``: the live terminal view, ``--dump``, ``--camera``."""
from __future__ import annotations

import argparse
import importlib
import sys
import threading
import time
from typing import Any, Callable

from corekit.cli.daemon_options import add_daemon_options
from corekit.cli.output import printable
from corekit.cli.worker import _loglevel, _positive_float

#: Seconds between attempts when the broker cannot be reached.
RECONNECT_DELAY = 1.0


def setup(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "events", parents=parents, help="watch the workers' events",
        description="Watch task and worker events: a live view of workers and tasks "
                    "(keys: up/down select, r revoke, t terminate, l rate limit, q quit), "
                    "a dump of every event (--dump), or a snapshot camera (--camera).")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("-d", "--dump", action="store_true",
                      help="print each event on a line instead of the live view")
    mode.add_argument("-c", "--camera", metavar="PATH.Class",
                      help="take snapshots with this camera class "
                           "(a corekit.events.snapshot.Polaroid subclass)")
    add_camera_options(p)
    add_daemon_options(p)
    p.set_defaults(func=run)


def add_camera_options(p: argparse.ArgumentParser) -> None:
    """``--frequency``, ``--maxrate`` and ``--loglevel`` of a camera (here and
    in a plugin's camera command, Django's ``corekit cam``)."""
    p.add_argument("-F", "--frequency", "--freq", type=_positive_float, default=1.0,
                   metavar="SECONDS", help="camera: seconds between snapshots (default 1)")
    p.add_argument("-r", "--maxrate", default=None, metavar="RATE",
                   help="camera: at most this many snapshots, e.g. 100/m")
    p.add_argument("-l", "--loglevel", default="WARNING", type=_loglevel,
                   help="debug, info, warning, error or critical (default: warning)")


def run(args: argparse.Namespace, app: Any) -> int:
    import signal
    import socket

    from corekit.cli.daemon import log_format, start_service
    from corekit.log import setup_logging

    setup_logging(args.loglevel, fmt=log_format(args, app))
    if not (args.dump or args.camera) and (args.detach or args.logfile or args.pidfile):
        raise ValueError("the live view needs a terminal: use --dump or --camera with the "
                         "daemon options")
    start_service(args, app, f"events@{socket.gethostname()}", args.loglevel)

    try:  # a supervisor's stop (SIGTERM) ends it cleanly, as Ctrl-C does; SIGINT
        # explicitly too, since a process started in the background by a
        # non-interactive shell inherits SIGINT ignored
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.default_int_handler)
    except ValueError:  # not the main thread: signals are its owner's
        pass
    try:
        if args.dump:
            return dump(app)
        if args.camera:
            return camera(app, args.camera, args.frequency, args.maxrate)
        return top(app)
    except KeyboardInterrupt:  # Ctrl-C is how one leaves the dump and the camera
        return 0


def capture(app: Any, handler: Callable[[dict[str, Any]], Any],
            should_stop: Callable[[], bool] = lambda: False, announce: str | None = None,
            on_listening: Callable[[], Any] | None = None) -> None:
    """Feed every event to *handler* until *should_stop*, reconnecting when
    the broker goes away; print *announce* and call *on_listening* once
    listening."""
    from corekit.events.receiver import EventReceiver
    from corekit.transport import mask_url

    while not should_stop():
        try:
            with EventReceiver(app, {"*": handler}) as receiver:
                if announce:
                    print(announce, flush=True)
                    announce = None
                if on_listening is not None:
                    on_listening()
                receiver.capture(should_stop=should_stop)
        except NotImplementedError as exc:  # this broker has no broadcast: never any event
            raise ValueError(str(exc)) from None
        except Exception as exc:  # the broker went away: say so and try again
            print(f"-> cannot read events from {mask_url(app.conf.broker)}: {exc!r}; retrying",
                  file=sys.stderr, flush=True)
            time.sleep(RECONNECT_DELAY)


def dump(app: Any) -> int:
    from corekit.events.dumper import Dumper

    dumper = Dumper()

    def on_event(event: dict[str, Any]) -> None:  # fields are what senders chose: escaped
        dumper.say(printable(dumper.format(event)))

    capture(app, on_event,
            announce="-> corekit events: dumping events (timestamps in UTC), Ctrl-C to stop")
    return 0


def load_camera(path: str) -> Any:
    """The class at ``module.Class`` or ``module:Class``."""
    module, sep, name = path.partition(":") if ":" in path else path.rpartition(".")
    if not sep or not module or not name:
        raise ValueError(f"camera {path!r} is not module.Class")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load camera {path!r}: {exc}") from None


def camera(app: Any, path: str, frequency: float, maxrate: str | None) -> int:
    from corekit.events.state import State

    cls = load_camera(path)
    state = State()
    cam = cls(state, freq=frequency, maxrate=maxrate, app=app)
    if not (callable(getattr(cam, "install", None)) and callable(getattr(cam, "cancel", None))):
        raise ValueError(f"{path} is not a camera: subclass corekit.events.snapshot.Polaroid")
    cam.install()
    try:
        capture(app, state.event, announce=f"-> corekit events: taking snapshots with {path} "
                                           f"(every {frequency:g} s), Ctrl-C to stop")
    finally:
        cam.cancel()
    return 0


def top(app: Any) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ValueError("the live view needs a terminal: use --dump to print events")
    from corekit.events import top as view
    from corekit.events.state import State

    state = State()
    stopping, listening = threading.Event(), threading.Event()
    feeder = threading.Thread(target=capture, args=(app, state.event, stopping.is_set),
                              kwargs={"on_listening": listening.set},
                              name="corekit-events-receiver", daemon=True)
    feeder.start()
    try:
        view.run(app, state, listening)
    finally:
        stopping.set()
        feeder.join(2.0)
    return 0
