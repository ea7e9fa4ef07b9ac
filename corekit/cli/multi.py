"""``corekit multi``: start, stop and restart several detached workers on
this machine, as Celery's ``celery multi`` does (the node syntax is in
`corekit.cli.multi_nodes`)."""
from __future__ import annotations

import argparse
import difflib
import signal
import subprocess
import sys
import tempfile
from typing import Any, Callable

from corekit import __version__
from corekit.cli.multi_parser import EPILOG, MULTI_FLAGS, USAGE
from corekit.cli.multi_nodes import (MultiUsageError, Node, Option, WorkerOptions,
                                     build_nodes, split_args)
from corekit.cli.output import printable

class Multi:
    """One run of ``corekit multi``: its output and its exit status."""

    def __init__(self, flags: set[str], out: Any = None) -> None:
        self.flags = flags
        self.out = out or sys.stdout
        self.status = 0

    def say(self, text: str = "", end: str = "\n") -> None:
        print(text, end=end, file=self.out, flush=True)

    def note(self, text: str = "", end: str = "\n") -> None:
        if "quiet" not in self.flags:
            self.say(text, end)

    def failed(self, text: str) -> None:
        """A node's failure: shown even with --quiet; the exit status is 1."""
        self.status = 1
        self.say(text)

    def splash(self) -> None:
        if "nosplash" not in self.flags:
            self.note(f"corekit multi v{__version__}")


def run(args: argparse.Namespace, app: Any = None) -> int:
    argv = list(args.argv)
    flags = {dest for dest in MULTI_FLAGS.values() if getattr(args, f"multi_{dest}", False)}
    if "--" in argv:
        cut = argv.index("--")
        head, tail = argv[:cut], argv[cut:]
    else:
        head, tail = argv, []
    if "-h" in head or "--help" in head:
        print(USAGE + "\n" + EPILOG, end="")
        return 0
    head = [a for a in head if a not in MULTI_FLAGS or flags.add(MULTI_FLAGS[a])]
    if not head:
        return usage_error("a command is needed (start, stop, restart, kill, show, names...)")
    command, rest = head[0], head[1:] + tail
    handler = COMMANDS.get(command)
    if handler is None:
        close = difflib.get_close_matches(command, [c for c in COMMANDS if "_" not in c], 1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return usage_error(f"unknown command {printable(command)!r}{hint}")
    multi = Multi(flags)
    try:
        return handler(multi, rest, args) or multi.status
    except MultiUsageError as exc:
        return usage_error(str(exc))


def usage_error(message: str) -> int:
    sys.stderr.write(USAGE + f"corekit multi: error: {message}\n")
    return 2


def nodes_from(rest: list[str], args: argparse.Namespace,
               with_signal: bool = False) -> tuple[list[Node], int]:
    """The nodes and, for stop and restart, the signal (default TERM).
    ``corekit``'s options given before ``multi`` (``corekit -A proj multi
    start 2``) go to every node, unless the nodes' arguments give them."""
    from corekit.cli import common_options

    parser = worker_parser()
    common = [a for a in common_options()._actions if a.option_strings]
    workers = WorkerOptions.from_parser(parser, {a.dest for a in common})
    parsed = split_args(rest, workers, with_signal=with_signal)
    before = []
    for action in common:
        value = getattr(args, action.dest, None)
        flag = max(action.option_strings, key=len)
        values = value if isinstance(value, list) else [value]
        if action.nargs == 0:
            before += [Option(flag, None)] if value else []
        elif value is not None:
            before += [Option(flag, str(v)) for v in values]
    nodes = build_nodes(parsed, workers, before=before)
    return nodes, parsed.signal or signal.SIGTERM


def worker_parser() -> argparse.ArgumentParser:
    """``corekit worker``'s parser, plugins' options included."""
    from corekit.cli import build_parser

    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices["worker"]
    raise AssertionError("no subcommands")  # pragma: no cover


# -- commands that only print ---------------------------------------------------
def show(multi: Multi, rest: list[str], args: argparse.Namespace) -> int:
    for node in nodes_from(rest, args)[0]:
        multi.say(node.command_line())
    return 0


def names(multi: Multi, rest: list[str], args: argparse.Namespace) -> int:
    for node in nodes_from(rest, args)[0]:
        multi.say(node.name)
    return 0


def get(multi: Multi, rest: list[str], args: argparse.Namespace) -> int:
    if not rest:
        raise MultiUsageError("get: which node? (corekit multi get NODENAME NODES...)")
    wanted, nodes = rest[0], nodes_from(rest[1:], args)[0]
    for node in nodes:
        if wanted in (node.name, node.given):
            multi.say(node.command_line())
            return 0
    raise MultiUsageError(f"get: no node {wanted!r} among {', '.join(n.name for n in nodes)}")


def expand(multi: Multi, rest: list[str], args: argparse.Namespace) -> int:
    if not rest:
        raise MultiUsageError("expand: which template? (corekit multi expand '%n.log' NODES)")
    for node in nodes_from(rest[1:], args)[0]:
        multi.say(node.expand(rest[0]))
    return 0


def help_(multi: Multi, rest: list[str], args: argparse.Namespace) -> int:
    multi.say(USAGE + "\n" + EPILOG)
    return 0


# -- commands that act -------------------------------------------------------------
def start(multi: Multi, rest: list[str], args: argparse.Namespace) -> int:
    nodes = nodes_from(rest, args)[0]
    multi.splash()
    multi.note("> Starting nodes...")
    for node in nodes:
        start_node(multi, node)
    return multi.status


def start_node(multi: Multi, node: Node, header: str | None = None) -> None:
    """Start *node* unless it runs; one line: ``<header>OK`` or why not."""
    from corekit.cli.multi_procs import NodeState, ensure_dirs, node_state, remove_pidfile

    header = f"\t> {node.name}: " if header is None else header
    state = node_state(node)
    if state.kind == NodeState.RUNNING:
        return multi.failed(f"{header}already running (pid {state.pid})")
    if state.kind == NodeState.BAD:
        return multi.failed(f"{header}FAILED ({state.reason})")
    if "dry_run" in multi.flags:
        return multi.note(f"{header}would run: {node.command_line()}")
    if state.kind == NodeState.STALE:
        remove_pidfile(node, state.pid)
        multi.note(f"\t> {node.name}: stale pid file removed ({state.reason})")
    if "verbose" in multi.flags:
        multi.note(f"  {node.command_line()}")
    problem = ensure_dirs(node)
    if problem is None:
        code, output = run_detached(node.argv)
        problem = None if code == 0 else _exit_text(code) + (f": {output}" if output else "")
    if problem is None:
        multi.note(f"{header}OK")
    else:
        multi.failed(f"{header}FAILED ({printable(problem, newlines=True)})")


def run_detached(argv: list[str]) -> tuple[int, str]:
    """Run the detaching command, wait for it (not for the worker it leaves
    running), and return its exit status and what it printed.  Its output
    goes to a file: a pipe would keep us waiting while the worker holds it."""
    with tempfile.TemporaryFile() as output:
        code = subprocess.call(argv, stdin=subprocess.DEVNULL, stdout=output,
                               stderr=subprocess.STDOUT)
        output.seek(0)
        text = output.read(65536).decode("utf-8", "replace").strip()
    return code, text


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def stop(multi: Multi, rest: list[str], args: argparse.Namespace,
         on_down: Callable[[Node], None] | None = None) -> int:
    from corekit.cli.multi_procs import stop_nodes

    nodes, sig = nodes_from(rest, args, with_signal=True)
    multi.splash()
    stop_nodes(multi, nodes, sig, on_down)
    return multi.status


def restart(multi: Multi, rest: list[str], args: argparse.Namespace) -> int:
    """Signal every node, and start each again as soon as it is down (a node
    that was not running is started too), as Celery's restart does."""
    def start_again(node: Node) -> None:
        start_node(multi, node, header=f"> Restarting node {node.name}: ")

    return stop(multi, rest, args, on_down=start_again)


def kill(multi: Multi, rest: list[str], args: argparse.Namespace) -> int:
    from corekit.cli.multi_procs import kill_nodes

    nodes = nodes_from(rest, args)[0]
    multi.splash()
    kill_nodes(multi, nodes)
    return multi.status


COMMANDS: dict[str, Callable[..., int]] = {
    "start": start, "stop": stop, "stopwait": stop, "stop_verify": stop,
    "restart": restart, "kill": kill, "show": show, "get": get, "names": names,
    "expand": expand, "help": help_,
}
