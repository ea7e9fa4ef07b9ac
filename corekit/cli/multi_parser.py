"""The ``corekit multi`` subcommand's parser, apart from `corekit.cli.multi`
so that ``corekit --help`` imports nothing that only running it needs."""
from __future__ import annotations

import argparse
from typing import Any

#: Flags of multi itself, taken out wherever they are (before ``--``).
MULTI_FLAGS = {"--nosplash": "nosplash", "--quiet": "quiet", "-q": "quiet",
               "--verbose": "verbose", "--no-color": "no_color", "--dry-run": "dry_run"}

USAGE = """\
usage: corekit multi start <n1 n2 nN|count> [worker options]
       corekit multi stop <n1 n2 nN|count> [-SIG (default: -TERM)] [worker options]
       corekit multi stopwait <n1 n2 nN|count> [-SIG] [worker options]
       corekit multi restart <n1 n2 nN|count> [-SIG] [worker options]
       corekit multi kill <n1 n2 nN|count> [worker options]

       corekit multi show <n1 n2 nN|count> [worker options]
       corekit multi get <node name> <n1 n2 nN|count> [worker options]
       corekit multi names <n1 n2 nN|count> [worker options]
       corekit multi expand <template> <n1 n2 nN|count> [worker options]
       corekit multi help

per-node options: -c:1 10, -c:1-3 10, -Q:image,video media, --loglevel:w2 debug
flags (anywhere): --nosplash, -q/--quiet, --verbose, --no-color, --dry-run
multi's own options: --hostname HOST (nodes' host), --prefix, --range-prefix,
  --suffix, --executable PYTHON, --cmd, --append
"""

EPILOG = """\
examples:
  corekit multi start 3 -A proj -c 4            corekit1@HOST .. corekit3@HOST
  corekit multi start image video -A proj -c:image 2 -Q:image images
  corekit multi show 3 -A proj -c 3 -c:1 10     the commands, not run
  corekit multi stop 3 -A proj                  TERM, then wait for each to exit
  corekit multi restart 3 -A proj -c 4
  corekit multi kill 3                          KILL, pid files removed

Use the same pid file options (--pidfile) for stop, restart and kill as for
start: they find the nodes' processes through their pid files.
"""


def setup(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "multi", parents=parents, help="start, stop and restart several detached workers",
        description="Start, stop, restart or kill several detached workers on this "
                    "machine (Celery's celery multi). Nodes are a count (3: corekit1@HOST.."
                    "corekit3@HOST) or names; every other argument goes to each worker, "
                    "-OPT:SELECTOR VALUE to the nodes SELECTOR names. Pid and log files "
                    "default to %%n.pid and %%n%%I.log in the current directory.",
        epilog=USAGE + "\n" + EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag, dest in MULTI_FLAGS.items():
        if flag != "-q":
            names = ("-q", flag) if dest == "quiet" else (flag,)
            p.add_argument(*names, dest=f"multi_{dest}", action="store_true",
                           help=_FLAG_HELP[dest])
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="COMMAND NODES [OPTIONS]",
                   help="start, stop, stopwait, restart, kill, show, get, names, expand or "
                        "help, then the nodes, then the workers' options")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, app: Any = None) -> int:
    """`corekit.cli.multi.run`, imported when multi runs, not for ``--help``."""
    from corekit.cli.multi import run as run_multi

    return run_multi(args, app)


_FLAG_HELP = {"nosplash": "do not print the 'corekit multi' line",
              "quiet": "print only errors", "verbose": "print each command it runs",
              "no_color": "accepted for Celery compatibility (the output has no colors)",
              "dry_run": "print what start, stop, restart or kill would do, do nothing"}
