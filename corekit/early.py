"""What must happen before anything else is imported: eventlet's monkey
patching for ``corekit worker -P eventlet``.

Green threads only cooperate when ``socket``, ``threading``, ``time``...
are patched before corekit, redis-py or the user's app module bind to them,
so the command line is read here, from ``sys.argv`` alone, at the very top of
``corekit/__init__.py`` (both ``python -m corekit`` and the ``corekit``
script import the package before any of their own code runs).  Only the
flag is seen this early: ``worker_pool = "eventlet"`` in the settings is not
(the settings live in the app module, which must not be imported unpatched),
so, as with Celery, ``-P eventlet`` must be given on the command line.

Nothing but ``sys`` is imported unless the flag is there.
"""
from __future__ import annotations

import sys

#: Pools that need the process patched before anything else is imported.
EARLY_PATCHED_POOLS = frozenset({"eventlet"})


def requested_pool(argv: list[str]) -> str | None:
    """The pool named by ``-P NAME``, ``-PNAME``, ``--pool NAME`` or
    ``--pool=NAME`` in a ``worker`` command line, else None (the last one
    wins, as with argparse)."""
    if "worker" not in argv:
        return None
    pool = None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg in ("-P", "--pool"):
            pool = argv[i + 1] if i + 1 < len(argv) else None
        elif arg.startswith("--pool="):
            pool = arg[len("--pool="):]
        elif arg.startswith("-P") and len(arg) > 2:
            pool = arg[2:]
    return pool


def running_corekit_cli() -> bool:
    """True in ``python -m corekit ...`` and the ``corekit`` script; False
    when a program merely imports corekit."""
    orig = getattr(sys, "orig_argv", [])
    for i, arg in enumerate(orig):
        if (arg == "-m" and orig[i + 1:i + 2] == ["corekit"]) or arg == "-mcorekit":
            return True
    program = sys.argv[0] if sys.argv else ""
    return program.replace("\\", "/").rsplit("/", 1)[-1] in ("corekit", "corekit.exe")


def patch_for_pool(argv: list[str] | None = None) -> str | None:
    """Monkey patch the process when the command line asks for a pool that
    needs it; return that pool's name (None when nothing was done)."""
    if argv is None:
        if not running_corekit_cli():
            return None
        argv = sys.argv[1:]
    pool = requested_pool(argv)
    if pool == "eventlet":
        _patch_eventlet()
        return pool
    return None


def _patch_eventlet() -> None:
    import warnings

    try:
        with warnings.catch_warnings():  # "eventlet is deprecated": the user chose it
            warnings.simplefilter("ignore")
            import eventlet
    except ImportError:  # the pool plugin says so, by name, at start-up
        return
    eventlet.monkey_patch()
