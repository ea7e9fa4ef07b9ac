"""``corekit monitor``: the web monitor (dashboard, JSON API, ``/metrics``)."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from corekit.cli.daemon_options import add_daemon_options
from corekit.cli.worker import _loglevel

VISIBLE = "visible in ps to every user of the machine"


def setup(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "monitor", parents=parents, help="serve the web monitor",
        description="Serve a live dashboard of the workers and tasks, a JSON API and "
                    "Prometheus metrics at /metrics.  Workers send task events with -E.  "
                    "Credentials given on the command line are " + VISIBLE + ": prefer "
                    "the -file options or COREKIT_MONITOR_BASIC_AUTH / "
                    "COREKIT_MONITOR_AUTH_TOKEN.")
    p.add_argument("--address", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1; any other needs auth)")
    p.add_argument("--port", type=int, default=5555, help="port to listen on (default: 5555)")
    p.add_argument("--allowed-host", action="append", default=None, metavar="NAME",
                   help="a host name the monitor answers to besides its address and "
                        "localhost (repeatable; '*' for any; default: the "
                        "monitor_allowed_hosts setting)")
    p.add_argument("--basic-auth", default=None, metavar="USER:PASS[,USER2:PASS2]",
                   help="require HTTP basic auth with one of these users (" + VISIBLE + ")")
    p.add_argument("--basic-auth-file", default=None, metavar="PATH",
                   help="read USER:PASS[,...] (or one per line) from this file, mode 600; "
                        "else from COREKIT_MONITOR_BASIC_AUTH")
    p.add_argument("--auth-token", default=None, metavar="TOKEN",
                   help="require 'Authorization: Bearer TOKEN' (the browser: open "
                        "/?token=TOKEN once) (" + VISIBLE + ")")
    p.add_argument("--auth-token-file", default=None, metavar="PATH",
                   help="read the token from this file, mode 600; else from "
                        "COREKIT_MONITOR_AUTH_TOKEN")
    p.add_argument("--inspect-interval", type=float, default=5.0, metavar="SECONDS",
                   help="how often to ask the workers for their pool, queues and tasks "
                        "(default: 5)")
    p.add_argument("--request-timeout", type=float, default=None, metavar="SECONDS",
                   help="a client's time to send a request's headers, and again its body; "
                        "also how long an idle connection is kept (default: 10)")
    p.add_argument("--max-connections", type=int, default=None, metavar="N",
                   help="connections open at once; more get 503 (default: 1000)")
    p.add_argument("-l", "--loglevel", default="WARNING", type=_loglevel,
                   help="debug, info, warning, error or critical (default: warning)")
    add_daemon_options(p)
    p.set_defaults(func=run_monitor)


def run_monitor(args: argparse.Namespace, app: Any) -> int:
    import socket

    from corekit.cli.daemon import log_format, start_service
    from corekit.log import setup_logging
    from corekit.monitor.auth import Auth, AuthConfigError, credential, parse_basic_auth

    setup_logging(args.loglevel, fmt=log_format(args, app))

    try:
        from corekit.monitor.server import Monitor
    except ImportError as exc:
        if exc.name != "tornado":
            raise
        print("Error: corekit monitor needs Tornado: pip install 'corekit[monitor]'",
              file=sys.stderr)
        return 2

    def warn(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    limits = {name: value for name, value in (("request_timeout", args.request_timeout),
                                              ("max_connections", args.max_connections))
              if value is not None}
    try:
        basic = credential("--basic-auth", args.basic_auth, args.basic_auth_file,
                           "COREKIT_MONITOR_BASIC_AUTH", os.environ, warn)
        source = ("--basic-auth-file" if args.basic_auth_file else "--basic-auth"
                  if args.basic_auth is not None else "COREKIT_MONITOR_BASIC_AUTH")
        token = credential("--auth-token", args.auth_token, args.auth_token_file,
                           "COREKIT_MONITOR_AUTH_TOKEN", os.environ, warn)
        auth = Auth(users=parse_basic_auth(basic, source) if basic else {}, token=token)
        monitor = Monitor(app, address=args.address, port=args.port, auth=auth,
                          allowed_hosts=args.allowed_host,
                          inspect_interval=args.inspect_interval, **limits)
    except AuthConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"Error: cannot listen on {args.address}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    start_service(args, app, f"monitor@{socket.gethostname()}", args.loglevel)
    import signal

    def interrupt(signum: int, frame: Any) -> None:
        # end the event loop through its stop event: an exception raised here
        # could land inside a request handler, which would swallow it
        if not monitor.request_stop():
            raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell's `&` ignores it
        signal.signal(signum, interrupt)
    print(f"corekit monitor on {monitor.url} (broker {app.producer.describe()}"
          f"{', auth required' if auth.enabled else ''}); Ctrl-C to stop", flush=True)
    try:
        monitor.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        print("monitor: stopping", flush=True)
        monitor.close()
    return 0
