"""The ``eventlet`` pool: one green thread per running task, for I/O-bound
work (``corekit worker -P eventlet -c 1000``).

Green threads only cooperate when ``socket``, ``threading``, ``time``... are
patched before corekit, redis-py or the user's app module bind to them.  This
plugin declares that patch (`monkey_patch`) through
``corekit_register_early_patches``; ``corekit.early`` calls it when the
command line names the pool (``-P eventlet``, ``--pool eventlet``), from
``sys.argv`` alone, before corekit's kernel is imported.
``worker_pool = "eventlet"`` in the settings is read too late for that (the
settings live in the app module, which must not be imported unpatched), so
as with Celery the pool is named on the command line; the pool refuses to
start in an unpatched process.

This module is what every plugin query imports: hooks only, no eventlet
(imported by the patch and the pool), no pool implementation
(``pool.py``, imported when a worker asks for the pool by name).
"""
from __future__ import annotations

from typing import Callable

from corekit.hookspecs import hookimpl


def monkey_patch() -> None:
    """Patch the process for green threads.  Without eventlet installed it
    does nothing: the pool says so, by name, when the worker builds it."""
    import warnings

    try:
        with warnings.catch_warnings():  # "eventlet is deprecated": the user chose it
            warnings.simplefilter("ignore")
            import eventlet
    except ImportError:
        return
    eventlet.monkey_patch()


@hookimpl
def corekit_register_pools() -> dict[str, str]:
    return {"eventlet": "corekit.plugins.eventlet_pool.pool:EventletPool"}


@hookimpl
def corekit_register_early_patches() -> dict[str, Callable[[], None]]:
    return {"eventlet": monkey_patch}
