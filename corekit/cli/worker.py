"""``corekit worker``."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from corekit import __version__
from corekit.cli.daemon_options import add_daemon_options
from corekit.cli.options import positive_float as _positive_float
from corekit.cli.options import positive_int as _positive_int


def setup(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("worker", parents=parents, help="start a worker",
                              description="Consume task messages and run them.")
    p.add_argument("-l", "--loglevel", default="WARNING", type=_loglevel,
                   help="debug, info, warning, error or critical (default: warning)")
    p.add_argument("-c", "--concurrency", type=_positive_int, default=None,
                   help="number of pool slots (default: number of CPUs)")
    p.add_argument("-P", "--pool", default=None,
                   help=f"pool implementation, one of the installed: {installed_pools()} "
                        "(default: worker_pool); a pool that patches the interpreter (green-"
                        "thread pools) must be named here, not only in worker_pool: the patch "
                        "comes before the app is imported")
    p.add_argument("-Q", "--queues", default=None,
                   help="comma-separated queues to consume (default: task_default_queue)")
    p.add_argument("-X", "--exclude-queues", default="",
                   help="comma-separated queues not to consume")
    p.add_argument("-n", "--hostname", default=None,
                   help="node name, e.g. name@%%h (%%h host, %%n short name, %%d domain)")
    p.add_argument("--prefetch-multiplier", type=_positive_int, default=None,
                   help="messages reserved per pool slot (default: 4)")
    p.add_argument("-O", dest="optimization", choices=("fair", "default"), default=None,
                   help="scheduling, for Celery compatibility: corekit is always fair on "
                        "every pool (a task goes to a pool slot only once the slot is "
                        "free, so none waits behind a long task while another slot is idle)")
    p.add_argument("--time-limit", type=_positive_float, default=None, metavar="SECONDS",
                   help="hard time limit: a task running longer is killed (by the "
                        "pools that enforce it)")
    p.add_argument("--soft-time-limit", type=_positive_float, default=None, metavar="SECONDS",
                   help="soft time limit: SoftTimeLimitExceeded is raised inside the task")
    p.add_argument("-E", "--task-events", action="store_true", default=None,
                   help="send task events (worker_send_task_events), for monitors")
    p.add_argument("--without-heartbeat", action="store_true",
                   help="send no worker events (online, heartbeat, offline)")
    p.add_argument("--heartbeat-interval", type=_positive_float, default=None,
                   metavar="SECONDS", help="seconds between worker-heartbeat events "
                                           "(default: 2)")
    p.add_argument("--no-banner", action="store_true", help="do not print the banner")
    add_daemon_options(p)
    p.set_defaults(func=run)


def installed_pools() -> str:
    """The pools the installed plugins provide, as help text lists them."""
    from corekit.pluginmanager import default_manager

    return ", ".join(sorted(default_manager().registry("pools")))


def _loglevel(text: str) -> str:
    if text.upper() not in ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL"):
        raise argparse.ArgumentTypeError(
            f"unknown log level {text!r} (use debug, info, warning, error or critical)")
    return text.upper()


def _csv(text: str | None) -> list[str]:
    return [q.strip() for q in (text or "").split(",") if q.strip()]


def run(args: argparse.Namespace, app: Any) -> int:
    from corekit.cli.daemon import log_format, restart_in_place, start_service, take_pending_hup
    from corekit.cli.extensions import check_pool_options
    from corekit.log import redirect_stdouts, setup_logging

    check_pool_options(args, args.pool or app.conf.worker_pool)
    setup_logging(args.loglevel, fmt=log_format(args, app))
    worker = app.Worker(queues=_csv(args.queues) or None,
                        exclude_queues=_csv(args.exclude_queues),
                        concurrency=args.concurrency, pool=args.pool,
                        hostname=args.hostname, prefetch_multiplier=args.prefetch_multiplier,
                        time_limit=args.time_limit,
                        soft_time_limit=args.soft_time_limit, task_events=args.task_events,
                        without_heartbeat=args.without_heartbeat,
                        heartbeat_interval=args.heartbeat_interval)
    worker.setup()
    start_service(args, app, worker.hostname, args.loglevel, hup_reopens=False)
    if not args.no_banner:
        print(banner(worker), flush=True)
    stdout, stderr = sys.stdout, sys.stderr
    if app.conf.worker_redirect_stdouts:
        redirect_stdouts(app.conf.worker_redirect_stdouts_level)
    worker.install_signal_handlers()
    if take_pending_hup():  # a restart asked for while this one started: nothing runs yet
        restart_in_place()
    try:
        worker.start(install_signals=True)
    finally:  # what the command says after the worker (an error) is not a task's output
        sys.stdout, sys.stderr = stdout, stderr
    if worker.restart_requested:  # SIGHUP: the same command line, in this process
        restart_in_place()
    return 0


def banner(worker: Any) -> str:
    import platform

    app = worker.app
    tasks = app.tasks.user_tasks() or ["(none: this app registers no tasks)"]
    events = "ON" if worker.send_task_events else "OFF (enable -E to monitor tasks in this worker)"
    lines = [
        f" -------------- {worker.hostname} v{__version__}",
        f"--- ***** ----- {platform.platform()} {platform.python_implementation()} "
        f"{platform.python_version()}",
        "-- ******* ---- [config]",
        f"- *** --- * --- .> app:         {app.main or '__main__'}:{id(app):#x}",
        f"- ** ---------- .> transport:   {worker.transport.describe()}"
        f"{_origin(app, 'broker_url')}",
        f"- ** ---------- .> results:     {worker.backend.describe()}"
        f"{_origin(app, 'result_backend')}",
        f"- *** --- * --- .> concurrency: {worker.concurrency} ({worker.pool_name})",
        f"-- ******* ---- .> speedups:    {_speedups()}",
        f"--- ***** ----- .> task events: {events}",
        " -------------- [queues]",
        *[f"                .> {q}" for q in worker.queues],
        "",
        "[tasks]",
        *[f"  . {name}" for name in tasks],
        "",
    ]
    return "\n".join(lines)


def _origin(app: Any, setting: str) -> str:
    """`` (from COREKIT_BROKER_URL)``: where a URL of the banner comes from."""
    origin = app.conf.origin(setting)
    if origin == "default":
        return " (follows the broker)" if setting == "result_backend" else " (default)"
    return "" if origin == "code" else f" (from {origin})"


def _speedups() -> str:
    from corekit import _speedups

    return getattr(_speedups, "IMPLEMENTATION", "python")
