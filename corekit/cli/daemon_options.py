"""The daemon options of the service commands (``worker``, ``beat``,
``events``, ``monitor``), apart from `corekit.cli.daemon`, which runs them:
``corekit --help`` builds these parsers and must not import logging,
signal or the pid file code."""
from __future__ import annotations

import argparse
import os

__all__ = ["add_daemon_options", "DEFAULT_LOGFILE", "LOG_FORMATS"]

#: The log file of a detached process given no ``--logfile`` (in its workdir).
DEFAULT_LOGFILE = "%n%I.log"
#: ``--log-format`` and the ``log_format`` setting (`corekit.logfiles`).
LOG_FORMATS = ("text", "json")

EXPANSIONS = ("%%n short node name, %%N full node name, %%h host, %%i pool process index "
              "(0 in the main process), %%I -index (empty in the main process)")


def add_daemon_options(parser: argparse.ArgumentParser) -> None:
    """The daemon options, on a service command's parser."""
    g = parser.add_argument_group("daemon options")
    g.add_argument("-D", "--detach", action="store_true",
                   help="run in the background: double fork, new session, stdin/stdout/stderr "
                        "to /dev/null, the log to --logfile (default: " +
                        DEFAULT_LOGFILE.replace("%", "%%") + " in the workdir); the command "
                        "exits 0 once the process has started (pid file written), else 1 with "
                        "its error")
    g.add_argument("--pidfile", metavar="PATH", default=None,
                   help="write the pid here; refused while a running process holds it, taken "
                        "over when stale; removed at exit (" + EXPANSIONS + ")")
    g.add_argument("--logfile", metavar="PATH", default=None,
                   help="append the log to this file, reopened on SIGHUP (" + EXPANSIONS + ")")
    g.add_argument("--log-format", choices=LOG_FORMATS, default=None,
                   help="text (the worker's lines), or one JSON object per line (default: the "
                        "log_format setting)")
    g.add_argument("--uid", type=user_id, metavar="USER|UID", default=None,
                   help="run as this user once the pid and log files are open")
    g.add_argument("--gid", type=group_id, metavar="GROUP|GID", default=None,
                   help="run as this group (default with --uid: the user's group)")
    g.add_argument("--umask", type=umask, metavar="OCTAL", default=None,
                   help="file mode creation mask, e.g. 022 or 0o022 (default: inherited)")
    g.add_argument("--workdir", type=directory, metavar="DIR", default=None,
                   help="change to this directory first (the app, relative paths)")


def user_id(text: str) -> int:
    """argparse ``type`` of ``--uid``: a user name or number."""
    import pwd

    if text.isdigit():
        return int(text)
    try:
        return pwd.getpwnam(text).pw_uid
    except KeyError:
        raise argparse.ArgumentTypeError(f"no user named {text!r}") from None


def group_id(text: str) -> int:
    """argparse ``type`` of ``--gid``: a group name or number."""
    import grp

    if text.isdigit():
        return int(text)
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise argparse.ArgumentTypeError(f"no group named {text!r}") from None


def umask(text: str) -> int:
    """argparse ``type`` of ``--umask``: octal, ``022`` or ``0o022``."""
    digits = text[2:] if text.lower().startswith("0o") else text
    try:
        value = int(digits, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an octal mask, e.g. 022") from None
    if not 0 <= value <= 0o777:
        raise argparse.ArgumentTypeError(f"{text!r} is not a mask between 0 and 777")
    return value


def directory(text: str) -> str:
    """argparse ``type`` of ``--workdir``: an existing directory."""
    if not os.path.isdir(text):
        what = "does not exist" if not os.path.exists(text) else "is not a directory"
        raise argparse.ArgumentTypeError(f"{text!r} {what}")
    return text
