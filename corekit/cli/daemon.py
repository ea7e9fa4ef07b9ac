"""Running a service command (``worker``, ``beat``, ``events``, ``monitor``)
as a daemon: ``--detach``, ``--pidfile``, ``--logfile``, ``--uid``,
``--gid``, ``--umask``, ``--workdir``, ``--log-format``; SIGUSR1 (every
thread's stack to the log), SIGHUP (reopen log files, or restart a worker
in place: `restart_in_place`).

The order, as Celery's: `prepare` (before the app is loaded: chdir, umask,
detach), then the command builds what can fail, then `start_service`
(log file, pid file, privileges dropped, and only then the detaching
parent is told to exit 0).  A detached process's errors before that point
reach the parent through a pipe (the child's stderr), which prints them
and exits 1.
"""
from __future__ import annotations

import argparse
import atexit
import logging
import os
import signal
import sys
from typing import Any, NoReturn, Sequence

from corekit.cli.daemon_options import DEFAULT_LOGFILE, LOG_FORMATS, add_daemon_options
from corekit.cli.pidfile import Pidfile
from corekit.exceptions import CorekitError
from corekit.logfiles import dump_stacks, node_format, reopen_log_files

logger = logging.getLogger("corekit.daemon")

__all__ = ["add_daemon_options", "prepare", "start_service", "restart_in_place",
           "install_service_signals", "DEFAULT_LOGFILE"]

#: Set in the environment of a detached process restarted in place: it is
#: a daemon already (no second fork), its default log file still applies.
DETACHED_ENV = "COREKIT_DETACHED"
#: What a detached child writes on its stderr pipe once it has started.
READY = b"\0"

_state: dict[str, Any] = {"detached": False, "until_ready": False, "cwd": None,
                          "hup_pending": False}

def is_service(args: argparse.Namespace) -> bool:
    return hasattr(args, "detach") and hasattr(args, "pidfile")


def prepare(args: argparse.Namespace) -> int | None:
    """Before the app is loaded: chdir to ``--workdir``, set ``--umask``,
    and ``--detach``.  Returns the exit status in the process that
    detached (the command is done there); None where the command goes on."""
    if not is_service(args):
        return None
    # a SIGHUP before the command's own handler (a second reload while a
    # worker restarts: `restart_in_place` blocks it across exec) must not
    # kill the process (SIGHUP's default): it is kept for later
    signal.signal(signal.SIGHUP, _early_hup)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    _state["cwd"] = os.getcwd()
    if args.workdir:
        os.chdir(args.workdir)
    if args.umask is not None:
        os.umask(args.umask)
    already = os.environ.pop(DETACHED_ENV, None) == "1"
    if args.detach or already:
        _state["detached"] = True
        if not already:
            return detach()
    return None


def detach() -> int | None:
    """Double fork: the daemon (new session, stdin/stdout on /dev/null,
    stderr a pipe to us until it has started) gets None; this process
    gets its exit status."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child:
        os.close(write_end)
        os.waitpid(child, 0)
        return _wait_until_started(read_end)
    try:
        os.close(read_end)
        os.setsid()
        if os.fork():
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.dup2(write_end, 2)
        os.close(devnull)
        os.close(write_end)
    except BaseException as exc:  # never let a half-detached child run the command
        os.write(write_end, f"Error: cannot detach: {exc}\n".encode())
        os._exit(1)
    _state["until_ready"] = True
    return None


def _wait_until_started(read_end: int) -> int:
    """What the detached process wrote until it started (or died): 0 when
    it started, else print its error and return 1."""
    chunks: list[bytes] = []
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while True:
            chunk = pipe.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
            if chunk.endswith(READY):
                break
    data = b"".join(chunks)
    started = data.endswith(READY)
    text = data.rstrip(READY).decode("utf-8", "replace")
    if text:
        sys.stderr.write(text if text.endswith("\n") else text + "\n")
    if not started:
        if not text:
            sys.stderr.write("Error: the detached process exited before it started\n")
        return 1
    return 0


def notify_started() -> None:
    """Tell the detaching parent we started; our stderr goes to /dev/null."""
    if not _state["until_ready"]:
        return
    _state["until_ready"] = False
    sys.stderr.flush()
    os.write(2, READY)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def start_service(args: argparse.Namespace, app: Any, nodename: str,
                  loglevel: str | int, hup_reopens: bool = True) -> Pidfile | None:
    """Log to ``--logfile`` (default when detached: `DEFAULT_LOGFILE`) in the
    ``--log-format``, take the pid file, drop privileges, install SIGUSR1
    (and SIGHUP to reopen log files with *hup_reopens*), then tell the
    detaching parent we started.  Returns the pid file, removed at exit."""
    from corekit.log import LoggingProxy, setup_logging

    logfile = args.logfile or (DEFAULT_LOGFILE if _state["detached"] else None)
    setup_logging(loglevel, logfile=logfile, fmt=log_format(args, app), nodename=nodename)
    pidfile = None
    if args.pidfile:
        pidfile = Pidfile(node_format(args.pidfile, nodename))
        pidfile.acquire()
        atexit.register(pidfile.release)
    if args.uid is not None or args.gid is not None:
        paths = [h.path for h in logging.getLogger().handlers if hasattr(h, "path")]
        drop_privileges(args.uid, args.gid, paths)
    install_service_signals(hup_reopens)
    notify_started()
    if _state["detached"]:  # print() and uncaught errors: to the log, not /dev/null
        sys.stdout = LoggingProxy(logging.getLogger("corekit.stdout"), logging.WARNING)
        sys.stderr = LoggingProxy(logging.getLogger("corekit.stdout"), logging.WARNING)
        sys.excepthook = _log_uncaught
    return pidfile


def _log_uncaught(kind: Any, exc: BaseException, tb: Any) -> None:
    logger.critical("exiting on an uncaught %s", kind.__name__, exc_info=(kind, exc, tb))


def log_format(args: argparse.Namespace, app: Any) -> str:
    fmt = getattr(args, "log_format", None) or app.conf.log_format
    if str(fmt).lower() not in LOG_FORMATS:
        raise CorekitError(f"log_format {fmt!r}: use {' or '.join(LOG_FORMATS)}")
    return str(fmt).lower()


def drop_privileges(uid: int | None, gid: int | None, paths: Sequence[str] = ()) -> None:
    """setgid, initgroups (the user's groups), setuid, as Celery does; the
    log files *paths* are handed to the new owner first (so a restart in
    place can reopen them).  A no-op when we already are that user/group."""
    import pwd

    user = None
    if uid is not None:
        try:
            user = pwd.getpwuid(uid)
        except KeyError:
            pass
        if gid is None:
            gid = user.pw_gid if user is not None else None
    if (uid is None or uid == os.geteuid()) and (gid is None or gid == os.getegid()):
        return
    try:
        for path in paths:
            os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
        if gid is not None:
            os.setgid(gid)
            if user is not None:
                os.initgroups(user.pw_name, gid)
            else:
                os.setgroups([gid])
        if uid is not None:
            os.setuid(uid)
    except PermissionError as exc:
        raise CorekitError(f"cannot run as uid {uid} gid {gid}: {exc.strerror} (dropping "
                           "privileges needs root)") from None
    if uid not in (None, 0):
        try:
            os.setuid(0)
        except PermissionError:
            return
        raise CorekitError("dropped privileges but could become root again: refusing to run")


def _early_hup(signum: int, frame: Any) -> None:
    _state["hup_pending"] = True


def take_pending_hup() -> bool:
    """Whether a SIGHUP came before the command installed its handler."""
    pending, _state["hup_pending"] = _state["hup_pending"], False
    return bool(pending)


def _on_hup(signum: int, frame: Any) -> None:
    reopen_log_files()
    logger.info("SIGHUP received: log files reopened")


def install_service_signals(hup_reopens: bool = True) -> None:
    """SIGUSR1: every thread's stack to the log; SIGHUP (*hup_reopens*):
    reopen the log files (logrotate)."""
    try:
        signal.signal(signal.SIGUSR1, dump_stacks)
        if hup_reopens:
            signal.signal(signal.SIGHUP, _on_hup)
            take_pending_hup()  # nothing was open before: nothing to reopen
    except ValueError:  # not the main thread: signals are its owner's
        pass


def restart_argv() -> list[str]:
    """The command line this process was started with, without ``--detach``."""
    return [a for a in sys.orig_argv if a not in ("-D", "--detach")]


def restart_in_place() -> NoReturn:
    """Replace this process by a new run of its own command line (same pid,
    so the pid file stays valid; new code is imported).  A detached one
    stays detached without forking again.  Call it once the service has
    stopped (`corekit.worker.Worker.restart` does the warm shutdown)."""
    if _state["detached"]:
        os.environ[DETACHED_ENV] = "1"
    argv = restart_argv()
    logger.warning("restarting in place: %s", " ".join(argv))
    for handler in logging.getLogger().handlers:
        handler.flush()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()  # type: ignore[union-attr]
        except (AttributeError, OSError, ValueError):
            pass
    if _state["cwd"] and os.path.isdir(_state["cwd"]):  # a relative script path
        os.chdir(_state["cwd"])
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})  # until `prepare` handles it
    os.execv(sys.executable, argv)
