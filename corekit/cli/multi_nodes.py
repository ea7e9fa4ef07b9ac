"""The nodes of ``corekit multi``: its arguments (Celery's ``celery multi``
syntax) made into node names and each node's ``corekit worker --detach``
command line.

- Nodes are a count (``3``: ``corekit1@HOST`` .. ``corekit3@HOST``) or
  names (``image video``, ``w1@example.com``, ``w2@%h``).
- Every other argument goes to every node's worker, except that
  ``-OPT:SELECTOR VALUE`` goes only to the nodes SELECTOR names: an index
  (``1``), a range (``1-3``), a comma list (``1,3`` or ``image,video``) or
  a node name; it wins over the same option given for every node.
- ``%n`` (short name), ``%N`` and ``%p`` (full node name), ``%h`` (the
  node's host), ``%d`` (its domain) are expanded in option values;
  ``%i``/``%I`` are left for the worker (the pool process index).
- What follows ``--`` goes to every worker as it is.

Unlike Celery's parser, which guesses, this one asks the worker's own
parser whether an option takes a value, so ``--loglevel:2 debug`` and
``-E image`` mean what they say.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import socket
import sys
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from corekit.cli.multi_parser import MULTI_FLAGS

#: The short names of nodes given as a count: corekit1, corekit2...
RANGE_PREFIX = "corekit"
DEFAULT_PIDFILE = "%n.pid"
DEFAULT_LOGFILE = "%n%I.log"
DEFAULT_CMD = "-m corekit worker --detach"
#: Options of multi itself: one value, for every node (not per node).
MULTI_OPTIONS = {"--hostname": "hostname", "-n": "hostname", "--prefix": "prefix",
                 "--suffix": "suffix", "--range-prefix": "range_prefix", "--cmd": "cmd",
                 "--append": "append", "--executable": "executable"}
#: Options of ``corekit`` itself: placed before ``worker``, as Celery 5 does.
GLOBAL_DESTS = frozenset({"app", "broker", "result_backend", "config", "traceback"})
#: The pid and log file options, whatever the worker's parser says.
PATH_OPTIONS = {"--pidfile": "pidfile", "--logfile": "logfile", "-f": "logfile"}

_PERCENT = re.compile(r"%(.)")
_SIGNAL = re.compile(r"-(\d+|[A-Z][A-Z0-9]*)")


class MultiUsageError(ValueError):
    """Arguments that make no nodes; the message says why."""


@dataclass(frozen=True)
class OptionSpec:
    """What the worker's parser says about one option string."""
    key: str                    # its argparse dest; the flag itself when unknown
    takes_value: bool | None    # None: an option the worker does not declare
    repeatable: bool = False    # append/count actions: every occurrence counts


class WorkerOptions:
    """The option strings of ``corekit worker`` (plugins' included)."""

    def __init__(self, specs: dict[str, OptionSpec] | None = None,
                 global_keys: Iterable[str] = GLOBAL_DESTS) -> None:
        self.specs = dict(specs or {})
        for flag, dest in PATH_OPTIONS.items():
            self.specs[flag] = OptionSpec(dest, True)
        self.global_keys = frozenset(global_keys)

    @classmethod
    def from_parser(cls, parser: argparse.ArgumentParser,
                    global_keys: Iterable[str] = GLOBAL_DESTS) -> WorkerOptions:
        """From the worker's parser; *global_keys*: the dests of
        ``corekit``'s own options (they go before ``worker``)."""
        repeatable = (argparse._AppendAction, argparse._ExtendAction, argparse._CountAction)
        return cls({flag: OptionSpec(action.dest, action.nargs != 0,
                                     isinstance(action, repeatable))
                    for flag, action in parser._option_string_actions.items()
                    if action.dest != "help"}, global_keys)

    def spec(self, flag: str) -> OptionSpec:
        return self.specs.get(flag) or OptionSpec(flag, None)


@dataclass
class Option:
    flag: str
    value: str | None
    selector: str | None = None

    def text(self) -> str:
        sel = f":{self.selector}" if self.selector is not None else ""
        return f"{self.flag}{sel}" + (f" {self.value}" if self.value is not None else "")


@dataclass
class MultiArgs:
    """``argv`` after the subcommand, taken apart."""
    names: list[str] = field(default_factory=list)
    options: list[Option] = field(default_factory=list)
    passthrough: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    signal: int | None = None


def split_args(argv: Sequence[str], workers: WorkerOptions,
               with_signal: bool = False) -> MultiArgs:
    """Names, options (with their selectors and values), what follows
    ``--``, multi's own flags, and with *with_signal* a ``-SIG`` (``-KILL``,
    ``-9``) for stop and restart."""
    out = MultiArgs()
    args = list(argv)
    if "--" in args:
        at = args.index("--")
        args, out.passthrough = args[:at], args[at + 1:]
    pos = 0
    while pos < len(args):
        arg = args[pos]
        pos += 1
        if arg in MULTI_FLAGS:
            out.flags.add(MULTI_FLAGS[arg])
        elif with_signal and workers.spec(arg).takes_value is None and _signum(arg):
            out.signal = _signum(arg)
        elif len(arg) > 1 and arg[0] == "-":
            option = _option(arg, workers)
            if option.value is None and pos < len(args) and _wants_value(option.flag, workers) \
                    and not args[pos].startswith("-"):
                option.value = args[pos]
                pos += 1
            out.options.append(option)
        else:
            out.names.append(arg)
    return out


def _signum(arg: str) -> int | None:
    match = _SIGNAL.fullmatch(arg)
    if not match:
        return None
    text = match.group(1)
    if text.isdigit():
        return int(text) if 0 < int(text) < signal.NSIG else None
    try:
        return int(signal.Signals[text if text.startswith("SIG") else "SIG" + text])
    except KeyError:
        return None


def _option(arg: str, workers: WorkerOptions) -> Option:
    """``--opt[:sel][=value]``, ``-o[:sel]`` or ``-oVALUE`` (``-c3``, ``-Ofair``)."""
    if arg.startswith("--"):
        name, eq, value = arg.partition("=")
        flag, colon, selector = name.partition(":")
        return Option(flag, value if eq else None, selector if colon else None)
    flag, rest = arg[:2], arg[2:]
    if rest.startswith(":"):
        return Option(flag, None, rest[1:])
    if rest and workers.spec(flag).takes_value:
        return Option(flag, rest)
    return Option(arg, None)


def _wants_value(flag: str, workers: WorkerOptions) -> bool:
    """Known options as the worker declares them; multi's own take one; an
    unknown one takes the next argument unless it is an option (Celery's
    rule for short options)."""
    if flag in MULTI_OPTIONS:
        return True
    takes = workers.spec(flag).takes_value
    return takes is not False


# -- nodes -------------------------------------------------------------------
@dataclass(eq=False)
class Node:
    name: str              # the full node name, corekit1@host
    given: str             # as the command line gave it: 1, image, w1@example.com
    argv: list[str]        # the command that starts it
    pidfile: str           # absolute, as the worker's main process names it
    logfile: str           # absolute; %i/%I are the worker's

    @property
    def shortname(self) -> str:
        return self.name.partition("@")[0]

    def command_line(self) -> str:
        return " ".join(shlex.quote(a) for a in self.argv)

    def expand(self, template: str) -> str:
        return expand(template, self.name)


def expand(template: str, nodename: str, keep_escapes: bool = False) -> str:
    """``%n`` short name, ``%N``/``%p`` full node name, ``%h`` the host after
    ``@``, ``%d`` its domain, ``%%`` a percent sign (kept as ``%%`` with
    *keep_escapes*: the worker expands that value again); ``%i``, ``%I``
    and any other ``%x`` are left as they are (a URL's ``%40`` too)."""
    name, _, host = nodename.partition("@")
    values = {"n": name, "N": nodename, "p": nodename, "h": host,
              "d": host.partition(".")[2], "%": "%%" if keep_escapes else "%"}
    return _PERCENT.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def host_format(template: str, hostname: str | None = None) -> str:
    """A node name's ``%h`` (this host), ``%n`` (its first label), ``%d``
    (its domain), as the worker's ``-n`` expands them."""
    host = hostname or socket.gethostname()
    label, _, domain = host.partition(".")
    values = {"h": host, "n": label, "d": domain, "%": "%"}
    return _PERCENT.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def as_worker_sees(path: str) -> str:
    """A pid/log file path as the worker's main process opens it (``%i``
    is 0 there, ``%I`` empty)."""
    values = {"i": "0", "I": "", "%": "%"}
    return _PERCENT.sub(lambda m: values.get(m.group(1), m.group(0)), path)


def build_nodes(args: MultiArgs, workers: WorkerOptions, cwd: str | None = None,
                hostname: str | None = None, executable: str | None = None,
                before: Iterable[Option] = ()) -> list[Node]:
    """The nodes *args* name, each with its command line.  *before*: options
    given to ``corekit`` before ``multi`` (``corekit -A proj multi ...``),
    which *args* override."""
    own: dict[str, str] = {}
    options = []
    for option in [*before, *args.options]:
        if option.flag in MULTI_OPTIONS:
            if option.selector is not None:
                raise MultiUsageError(f"{option.flag} is for every node; it cannot be given "
                                      f"per node ({option.text()})")
            if option.value is None:
                raise MultiUsageError(f"{option.flag} needs a value")
            own[MULTI_OPTIONS[option.flag]] = option.value
        else:
            options.append(option)
    given, prefix = _given_names(args.names, own)
    suffix = own.get("suffix") or own.get("hostname") or hostname or socket.gethostname()
    names = [host_format(g if "@" in g else f"{prefix}{g}@{suffix}") for g in given]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise MultiUsageError(f"node {name} is given twice")
    per_node = [_merge(options, workers, given, names, i) for i in range(len(names))]
    base = cwd or os.getcwd()
    exe = own.get("executable") or executable or sys.executable
    return [_node(given[i], names[i], per_node[i], workers, own, base, exe, args.passthrough)
            for i in range(len(names))]


def _given_names(values: list[str], own: dict[str, str]) -> tuple[list[str], str]:
    if not values:
        raise MultiUsageError("no nodes given: a count (3) or names (image video)")
    if len(values) == 1 and values[0].isdigit():
        count = int(values[0])
        if count < 1:
            raise MultiUsageError(f"a count of nodes is 1 or more, not {count}")
        return [str(n) for n in range(1, count + 1)], own.get("range_prefix") or RANGE_PREFIX
    return list(values), own.get("prefix") or ""


def select(selector: str, given: list[str], names: list[str]) -> list[int]:
    """The indexes (0-based) of the nodes *selector* names: node names (as
    given, short or full), 1-based indexes and ranges, comma-separated."""
    chosen: list[int] = []
    for part in selector.split(","):
        found = [i for i, (g, n) in enumerate(zip(given, names))
                 if part in (g, n, n.partition("@")[0])]
        if not found:
            found = _indexes(part, len(names))
        if not found:
            listed = ", ".join(names)
            raise MultiUsageError(
                f"selector {selector!r} names no node: {part!r} is neither an index 1-"
                f"{len(names)}, a range of them, nor one of the nodes ({listed})")
        chosen += [i for i in found if i not in chosen]
    return chosen


def _indexes(part: str, count: int) -> list[int]:
    match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
    if not match:
        return []
    first = int(match.group(1))
    last = int(match.group(2) or first)
    if not 1 <= first <= last <= count:
        return []
    return list(range(first - 1, last))


def _merge(options: list[Option], workers: WorkerOptions, given: list[str],
           names: list[str], index: int) -> dict[str, list[Option]]:
    """Node *index*'s options by key, in first-seen order: the options for
    every node, then its own ones, which replace them (those of a
    repeatable option, such as ``--plugin``, add up)."""
    merged: dict[str, list[Option]] = {}
    mine = [o for o in options if o.selector is None]
    for option in options:
        if option.selector is not None:
            if option.selector == "":
                raise MultiUsageError(f"{option.flag}: has no selector")
            if index in select(option.selector, given, names):
                mine.append(option)
    for option in mine:
        spec = workers.spec(option.flag)
        if spec.key in merged and spec.repeatable:
            merged[spec.key].append(option)
        else:
            merged[spec.key] = [option]
    return merged


def _node(given: str, name: str, options: dict[str, list[Option]], workers: WorkerOptions,
          own: dict[str, str], cwd: str, executable: str, passthrough: list[str]) -> Node:
    """Celery's order: the options as given (pid and log file where given),
    then ``-n NAME``, then the default pid and log files."""
    workdir = options.get("workdir")
    base = os.path.join(cwd, expand(workdir[-1].value or "", name)) if workdir else cwd
    options["hostname"] = [Option("-n", name)]
    for key, default in (("pidfile", DEFAULT_PIDFILE), ("logfile", DEFAULT_LOGFILE)):
        if options.get(key, [Option("", None)])[-1].value is None:
            options[key] = [Option("--" + key, default)]
    paths = {key: os.path.normpath(os.path.join(base, expand(options[key][-1].value or "",
                                                                name, True)))
             for key in ("pidfile", "logfile")}
    cmd = shlex.split(expand(own.get("cmd") or DEFAULT_CMD, name))
    front: list[str] = []
    rest: list[str] = []
    for key, occurrences in options.items():
        if key in paths:
            rest.append(f"--{key}={paths[key]}")
            continue
        for option in occurrences:
            (front if key in workers.global_keys else rest).extend(_format(option, name))
    at = cmd.index("corekit") + 1 if "corekit" in cmd else len(cmd)
    argv = [executable, *cmd[:at], *front, *cmd[at:], *rest, *passthrough]
    if own.get("append"):
        argv += shlex.split(expand(own["append"], name))
    return Node(name, given, argv, as_worker_sees(paths["pidfile"]),
                as_worker_sees(paths["logfile"]))


def _format(option: Option, nodename: str) -> list[str]:
    if option.value is None:
        return [option.flag]
    value = expand(option.value, nodename)
    return [f"{option.flag}={value}"] if option.flag.startswith("--") else [option.flag, value]
