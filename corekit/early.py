"""What must happen before anything else is imported: the interpreter
patching a pool's plugin declares (``corekit_register_early_patches``), when
a ``corekit`` command line names that pool with ``-P`` / ``--pool``.

Some pools (green threads) only work when ``socket``, ``threading``,
``time``... are patched before corekit, redis-py or the user's app module
bind to them, so the command line is read here, from ``sys.argv`` alone, at
the very top of ``corekit/__init__.py`` (both ``python -m corekit`` and the
``corekit`` script import the package before any of their own code runs).
Only the flag is seen this early: a pool named in the settings is not (the
settings live in the app module, which must not be imported unpatched), so,
as with Celery, such a pool is named on the command line.

Nothing but ``sys`` is imported unless a pool is named; then the plugin
manager imports as few plugin modules as it can before finding the patch
(see `corekit.pluginmanager.PluginManager.early_patch`).  This module names
no pool: the plugins say which need patching.
"""
from __future__ import annotations

import sys


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
    """Patch the process when the command line names a pool whose plugin
    declares an early patch; return that pool's name (None when nothing was
    done).  A plugin that fails to import is not reported here: the
    command's first plugin query reports it, as one line."""
    if argv is None:
        if not running_corekit_cli():
            return None
        argv = sys.argv[1:]
    pool = requested_pool(argv)
    if not pool:
        return None
    from corekit.exceptions import CorekitError
    from corekit.pluginmanager import default_manager

    try:
        patch = default_manager().early_patch(pool)
    except CorekitError:
        return None
    if patch is None:
        return None
    patch()
    return pool
