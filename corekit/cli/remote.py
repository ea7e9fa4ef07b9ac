"""``corekit inspect``, ``corekit control`` and ``corekit status``: remote
control from the shell, worded like Celery's commands.

Each reply is printed as it arrives (``->  worker@host: OK`` and the
indented reply), or all of them as one JSON document with ``--json``.  When
no worker answers within ``--timeout`` the command says so on stderr and
exits with status 1; a bad method or argument is a usage error (status 2).
"""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from corekit.cli.output import printable

if TYPE_CHECKING:  # the argument types import what they check when they run, not at --help
    from corekit.control_client import Control

NO_REPLY = "Error: No nodes replied within time constraint."


# -- argument types (ArgumentTypeError: usage message, exit status 2) --------------
def _checked(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """*convert*, its ValueError worded as a usage error."""
    def parse(text: str) -> Any:
        try:
            return convert(text)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def _rate(text: str) -> str:
    from corekit.ratelimit import parse_rate

    parse_rate(text)
    return text


def _count(text: str, floor: int = 1) -> int:
    value = int(text)
    if value < floor:
        raise ValueError(f"{text} is below {floor}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError(f"{text} is not a positive number of seconds")
    return value


def _seconds(text: str) -> float | None:
    return None if text.lower() in ("none", "") else _positive(text)


def _bool(text: str) -> bool:
    words = {"true": True, "yes": True, "1": True, "on": True,
             "false": False, "no": False, "0": False, "off": False}
    if text.lower() not in words:
        raise ValueError(f"{text!r} is not true or false")
    return words[text.lower()]


def _signal(text: str) -> str | int:
    from corekit.control_client import check_signal

    return check_signal(int(text) if text.isdigit() else text)


def _exchange_type(text: str) -> str:
    from corekit.queues import EXCHANGE_TYPES

    if text not in EXCHANGE_TYPES:
        raise ValueError(f"use one of {', '.join(EXCHANGE_TYPES)}")
    return text


class Method(NamedTuple):
    """One subcommand of ``inspect`` or ``control``: its positional
    arguments (``add_argument`` keywords) and how to call it.  (No dataclass:
    ``corekit --help`` builds these and would import ``dataclasses`` and
    ``inspect`` for them.)"""

    help: str
    call: Callable[[Any, argparse.Namespace], Any]
    args: list[tuple[str, dict[str, Any]]]


def _inspect(name: str, help: str, args: list[tuple[str, dict[str, Any]]] | None = None,
             call: Callable[[Any, argparse.Namespace], Any] | None = None) -> Method:
    return Method(help, call or (lambda inspect, a: getattr(inspect, name)()), args or [])


INSPECT: dict[str, Method] = {
    "ping": _inspect("ping", "ask each worker for a pong"),
    "stats": _inspect("stats", "pool, broker, prefetch, totals, rusage, uptime"),
    "active": _inspect("active", "the tasks running now"),
    "reserved": _inspect("reserved", "the tasks received and waiting for the pool"),
    "scheduled": _inspect("scheduled", "the tasks waiting for their ETA or countdown"),
    "revoked": _inspect("revoked", "the ids of revoked tasks"),
    "registered": _inspect(
        "registered", "the registered task names (with these task attributes)",
        [("taskinfoitems", {"nargs": "*", "metavar": "ATTRIBUTE"})],
        lambda inspect, a: inspect.registered(*a.taskinfoitems)),
    "active_queues": _inspect("active_queues", "the queues each worker consumes from"),
    "conf": _inspect(
        "conf", "the configuration (secrets masked)",
        [("with_defaults", {"nargs": "?", "default": False, "metavar": "WITH_DEFAULTS",
                            "type": _checked(_bool)})],
        lambda inspect, a: inspect.conf(with_defaults=a.with_defaults)),
    "query_task": _inspect("query_task", "what each worker knows of these tasks",
                           [("ids", {"nargs": "+", "metavar": "TASK_ID"})],
                           lambda inspect, a: inspect.query_task(*a.ids)),
    "report": _inspect("report", "a human-readable report of each worker"),
    "clock": _inspect("clock", "each worker's logical clock"),
}


def _control(name: str, help: str, args: list[tuple[str, dict[str, Any]]],
             arguments: Callable[[argparse.Namespace], dict[str, Any]]) -> Method:
    return Method(help, lambda control, a: getattr(control, name)(**arguments(a), **a.options),
                  args)


_NOTHING: Callable[[argparse.Namespace], dict[str, Any]] = lambda a: {}  # noqa: E731
_N = [("n", {"nargs": "?", "default": 1, "type": _checked(_count)})]

CONTROL: dict[str, Method] = {
    "rate_limit": _control(
        "rate_limit", "set a task type's rate limit (e.g. 200/m, 10/s; 0 lifts it)",
        [("task_name", {}), ("rate_limit", {"type": _checked(_rate),
                                            "metavar": "RATE"})],
        lambda a: {"task_name": a.task_name, "rate_limit": a.rate_limit}),
    "time_limit": _control(
        "time_limit", "set a task type's soft [and hard] time limits in seconds",
        [("task_name", {}), ("soft", {"type": _checked(_seconds)}),
         ("hard", {"nargs": "?", "default": None, "type": _checked(_seconds)})],
        lambda a: {"task_name": a.task_name, "soft": a.soft, "hard": a.hard}),
    "pool_grow": _control("pool_grow", "add N (1) processes to the pool", _N,
                          lambda a: {"n": a.n}),
    "pool_shrink": _control("pool_shrink", "remove N (1) processes from the pool", _N,
                            lambda a: {"n": a.n}),
    "autoscale": _control(
        "autoscale", "scale the pool between MIN and MAX processes",
        [("max", {"type": _checked(_count)}),
         ("min", {"type": _checked(lambda text: _count(text, floor=0))})],
        lambda a: {"max": a.max, "min": a.min}),
    "add_consumer": _control(
        "add_consumer", "start consuming from a queue",
        [("queue", {}), ("exchange", {"nargs": "?"}),
         ("exchange_type", {"nargs": "?", "default": "direct",
                            "type": _checked(_exchange_type), "metavar": "TYPE"}),
         ("routing_key", {"nargs": "?"})],
        lambda a: {"queue": a.queue, "exchange": a.exchange,
                   "exchange_type": a.exchange_type, "routing_key": a.routing_key}),
    "cancel_consumer": _control("cancel_consumer", "stop consuming from a queue",
                                [("queue", {})], lambda a: {"queue": a.queue}),
    "enable_events": _control("enable_events", "start sending task events", [], _NOTHING),
    "disable_events": _control("disable_events", "stop sending task events", [], _NOTHING),
    "heartbeat": _control("heartbeat", "send a worker-heartbeat event now", [], _NOTHING),
    "shutdown": _control("shutdown", "stop the workers warmly", [], _NOTHING),
    "revoke": _control("revoke", "never run these tasks",
                       [("task_ids", {"nargs": "+", "metavar": "TASK_ID"})],
                       lambda a: {"task_id": a.task_ids}),
    "terminate": _control(
        "terminate", "revoke these tasks and kill them where they run",
        [("signal", {"type": _checked(_signal)}),
         ("task_ids", {"nargs": "+", "metavar": "TASK_ID"})],
        lambda a: {"task_id": a.task_ids, "signal": a.signal}),
}


# -- parsers ------------------------------------------------------------------
def remote_options(suppress: bool) -> argparse.ArgumentParser:
    """``-d``, ``-t``, ``-j``: taken before and after the method name (after
    it, the defaults are suppressed so they do not undo what came before)."""
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("remote control options")
    group.add_argument("-d", "--destination", default=default(None),
                       type=lambda text: [n.strip() for n in text.split(",") if n.strip()],
                       help="comma-separated worker names (default: every worker)")
    group.add_argument("-t", "--timeout", type=_checked(_positive), default=default(1.0),
                       help="seconds to wait for replies (default: 1.0)")
    group.add_argument("-j", "--json", action="store_true", default=default(False),
                       help="print the replies as JSON")
    return options


def _setup(kind: str, methods: dict[str, Method], help: str, run: Callable[..., int]
           ) -> Callable[[Any, list[argparse.ArgumentParser]], None]:
    def setup(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
        p = subparsers.add_parser(kind, parents=[*parents, remote_options(False)], help=help,
                                  description=f"{help[0].upper()}{help[1:]}.")
        sub = p.add_subparsers(dest="method", metavar="METHOD")
        sub.required = True
        late = [*parents, remote_options(True)]
        for name, method in methods.items():
            m = sub.add_parser(name, parents=late, help=method.help, description=method.help)
            for arg, spec in method.args:
                m.add_argument(arg, **{"metavar": arg.upper(), **spec})
            m.set_defaults(func=run, call=method.call)
    return setup


def setup_status(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("status", parents=[*parents, remote_options(False)],
                              help="list the workers that answer a ping",
                              description="List the workers that answer a ping.  With -d, "
                              "exit status 1 unless every named worker answers within "
                              "--timeout (a liveness probe).")
    p.set_defaults(func=run_status)


# -- running ------------------------------------------------------------------
def pretty(reply: Any) -> tuple[str, str]:
    """``(status, text)`` of one worker's reply, as Celery prints it."""
    if isinstance(reply, dict) and ("ok" in reply or "error" in reply):
        if "ok" in reply:
            return "OK", _indent(pretty(reply["ok"])[1])
        return "ERROR", _indent(pretty(reply["error"])[1])
    if isinstance(reply, list):
        return "OK", "\n".join(f"* {item}" for item in reply) if reply else "- empty -"
    if isinstance(reply, dict):
        return "OK", _json_dumps(reply, sort_keys=True, indent=4, default=repr)
    return "OK", str(reply)


def _indent(text: str, by: int = 4) -> str:
    return "\n".join(" " * by + line for line in text.splitlines())


def say(reply: dict[str, Any], body: bool = True) -> None:
    for hostname, value in reply.items():  # both as the replying node chose them: escaped
        status, text = pretty(value)
        print(f"->  {printable(hostname)}: {status}")
        if body:
            print(_indent(printable(text, newlines=True)))
    sys.stdout.flush()


def _nodes(count: int) -> str:
    return f"{count} node{'s' if count != 1 else ''} online."


def _ask(ask: Callable[[], Any]) -> Any:
    """*ask*, with a broker that cannot broadcast reported as an error (exit
    status 1); one that cannot be reached is `corekit.cli.main`'s to report."""
    try:
        return ask()
    except NotImplementedError as exc:
        raise SystemExit(_fail(str(exc)))


def _fail(message: str) -> int:
    print(f"Error: {message}", file=sys.stderr)
    return 1


def run_inspect(args: argparse.Namespace, app: Any) -> int:
    callback = None if args.json else say
    inspect = app.control.inspect(destination=args.destination, timeout=args.timeout,
                                  callback=callback)
    replies = _ask(lambda: args.call(inspect, args))
    if not replies:
        print(NO_REPLY, file=sys.stderr)
        return 1
    if args.json:
        print(_json_dumps(replies, default=repr))
    else:
        print(f"\n{_nodes(len(replies))}")
    return 0


def run_control(args: argparse.Namespace, app: Any) -> int:
    control: Control = app.control
    args.options = {"destination": args.destination, "reply": True, "timeout": args.timeout,
                    "callback": None if args.json else say}
    replies = _ask(lambda: args.call(control, args))
    if not replies:
        print(NO_REPLY, file=sys.stderr)
        return 1
    if args.json:
        print(_json_dumps(replies, default=repr))
    return 0


def run_status(args: argparse.Namespace, app: Any) -> int:
    inspect = app.control.inspect(destination=args.destination, timeout=args.timeout,
                                  callback=None if args.json else
                                  (lambda reply: say(reply, body=False)))
    replies = _ask(inspect.ping)
    missing = [name for name in args.destination or () if name not in (replies or {})]
    if replies and args.json:
        print(_json_dumps(replies))
    elif replies:
        print(f"\n{_nodes(len(replies))}")
    if missing or not replies:
        print(_no_reply(len(replies or ()), missing, args.timeout), file=sys.stderr)
        return 1
    return 0


def _no_reply(replied: int, missing: list[str], timeout: float) -> str:
    """The one ``Error:`` line of ``status`` when a node it waited for did not
    answer (a liveness probe's failure), naming the nodes."""
    if not missing:
        return NO_REPLY
    waited = f"(waited {timeout:g} s for {', '.join(map(printable, missing))})"
    hint = ("; a node name is name@host, as the worker's banner prints it"
            if any("@" not in name for name in missing) else "")
    if not replied:
        return f"{NO_REPLY[:-1]} {waited}{hint}."
    return (f"Error: {len(missing)} of {replied + len(missing)} nodes did not reply within "
            f"time constraint {waited}{hint}.")


setup_inspect = _setup("inspect", INSPECT, "ask the workers what they are doing", run_inspect)
setup_control = _setup("control", CONTROL, "change what the workers do", run_control)


def _json_dumps(value: Any, **options: Any) -> str:
    """``json.dumps``, with json imported when a command prints, not at ``--help``."""
    import json

    return json.dumps(value, **options)
