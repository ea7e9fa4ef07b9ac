"""A third-party corekit plugin, installed the way a user installs one and
registered by nothing but its entry point in the ``corekit.plugins`` group.

Through hooks alone it adds: a transport that keeps each message as a file
in a spool directory (``spool://path/to/dir``) and a serializer that writes
JSON backwards; a worker bootstep and the setting it reads; a ``corekit
spool-stats`` subcommand and a ``--audit-label`` option on ``corekit
worker``; and the ``spoolinline`` pool, whose plugin asks for early
interpreter patching.

This module is light on purpose: it imports nothing but ``corekit.hookspecs``
at its top, since it may be imported to look for an early patch before the
kernel is; each hook imports its implementation.
"""
from __future__ import annotations

from typing import Any, Callable

from corekit.hookspecs import hookimpl

#: Set by the early patch; the spoolinline pool refuses to start without it.
PATCHED = False


@hookimpl
def corekit_register_serializers() -> list[Any]:
    from corekit_spool.transport import ReversedJSON

    return [ReversedJSON()]


@hookimpl
def corekit_register_transports() -> dict[str, Any]:
    from corekit_spool.transport import SpoolTransport

    return {"spool": SpoolTransport}


@hookimpl
def corekit_register_pools() -> dict[str, Any]:
    from corekit_spool.pool import InlinePool

    return {"spoolinline": InlinePool}


@hookimpl
def corekit_register_early_patches() -> dict[str, Callable[[], None]]:
    return {"spoolinline": early_patch}


def early_patch() -> None:
    """Stands for a green-thread library's monkey patching: it notes what was
    already imported when it ran (in $CORESPOOL_PATCH_LOG, for the tests)."""
    import os
    import sys

    global PATCHED
    PATCHED = True
    path = os.environ.get("CORESPOOL_PATCH_LOG")
    if path:
        with open(path, "a") as log:
            log.write(" ".join(sorted(sys.modules)) + "\n")


@hookimpl
def corekit_register_settings() -> list[Any]:
    from corekit.settings import Setting

    return [Setting("spool_audit_label", "spool-audit", str,
                    "Label of the lines the spool audit step logs at worker start and stop.")]


@hookimpl
def corekit_register_bootsteps() -> list[Any]:
    from corekit_spool.steps import AuditStep

    return [AuditStep]


@hookimpl
def corekit_register_commands() -> dict[str, Callable[..., Any]]:
    from corekit_spool.cli import setup_spool_stats

    return {"spool-stats": setup_spool_stats}


@hookimpl
def corekit_register_command_options() -> dict[str, list[Any]]:
    from corekit.cli.options import CommandOption

    return {"worker": [CommandOption(("--audit-label",), "spool_audit_label",
                                     "label of the spool audit step's log lines "
                                     "(spool_audit_label)", {"metavar": "TEXT"})]}
