"""``corekit monitor``: the web monitor (dashboard, JSON API, ``/metrics``)."""
from __future__ import annotations

import argparse
import signal
import sys
from typing import Any



def setup(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "monitor", parents=parents, help="serve the web monitor",
        description="Serve a live dashboard of the workers and tasks, a JSON API and "
                    "Prometheus metrics at /metrics.  Workers send task events with -E.")
    p.add_argument("--address", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1; any other needs auth)")
    p.add_argument("--port", type=int, default=5555, help="port to listen on (default: 5555)")
    p.add_argument("--basic-auth", default=None, metavar="USER:PASS[,USER2:PASS2]",
                   help="require HTTP basic auth with one of these users")
    p.add_argument("--auth-token", default=None, metavar="TOKEN",
                   help="require 'Authorization: Bearer TOKEN' (the browser: open "
                        "/?token=TOKEN once)")
    p.add_argument("--inspect-interval", type=float, default=5.0, metavar="SECONDS",
                   help="how often to ask the workers for their pool, queues and tasks "
                        "(default: 5)")
    p.set_defaults(func=run_monitor)


def run_monitor(args: argparse.Namespace, app: Any) -> int:
    from corekit.monitor.auth import Auth, AuthConfigError, parse_basic_auth
    from corekit.monitor.server import Monitor

    try:
        users = parse_basic_auth(args.basic_auth) if args.basic_auth else {}
        auth = Auth(users=users, token=args.auth_token or None)
        monitor = Monitor(app, address=args.address, port=args.port, auth=auth,
                          inspect_interval=args.inspect_interval)
    except AuthConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"Error: cannot listen on {args.address}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell's `&` ignores it
        signal.signal(signum, _interrupt)
    print(f"corekit monitor on {monitor.url} (broker {app.producer.describe()}"
          f"{', auth required' if auth.enabled else ''}); Ctrl-C to stop", flush=True)
    try:
        monitor.serve_forever()
    except KeyboardInterrupt:
        print("monitor: stopping", flush=True)
    finally:
        monitor.close()
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
