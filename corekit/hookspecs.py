"""Every hook a corekit plugin can implement.

Plugin-kind hooks are called once when the plugin manager builds its
registries; each returns a mapping ``name -> factory`` (or a list of codec
objects) and the manager merges the answers of all plugins.  A name supplied
by two plugins is an error, so a third-party plugin cannot silently shadow a
built-in one.  Nothing here is called on the per-message path: the manager
resolves these hooks into plain dicts at start-up.

Lifecycle hooks are called for every plugin that implements them, in pluggy's
order (last registered first); their return values are ignored.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import pluggy

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.result_backend import ResultBackend
    from corekit.pool import Pool
    from corekit.serialization import Compressor, Serializer
    from corekit.settings import Setting
    from corekit.transport import Transport
    from corekit.worker import Worker

hookspec = pluggy.HookspecMarker("corekit")
hookimpl = pluggy.HookimplMarker("corekit")

# -- plugin kinds: called once, answers merged by name ------------------------


@hookspec
def corekit_register_transports() -> Mapping[str, type[Transport]]:
    """Return ``{url_scheme: Transport subclass}`` for the transports this
    plugin supplies (``"sqlite"``, ``"redis"``...)."""


@hookspec
def corekit_register_result_backends() -> Mapping[str, type[ResultBackend]]:
    """Return ``{url_scheme: ResultBackend subclass}``."""


@hookspec
def corekit_register_serializers() -> Sequence[Serializer]:
    """Return the `Serializer` objects this plugin supplies."""


@hookspec
def corekit_register_compressors() -> Sequence[Compressor]:
    """Return the `Compressor` objects this plugin supplies."""


@hookspec
def corekit_register_pools() -> Mapping[str, type[Pool]]:
    """Return ``{pool_name: Pool subclass}`` (``"solo"``, ``"threads"``...)."""


@hookspec
def corekit_register_commands() -> Mapping[str, Callable[..., Any]]:
    """Return ``{command_name: setup}`` for extra ``corekit`` subcommands.

    ``setup(subparsers)`` adds an argparse sub-parser and sets its ``func``
    default to a callable taking ``(args, app)`` and returning an exit code.
    """


@hookspec
def corekit_register_control_commands() -> Mapping[str, Callable[..., Any]]:
    """Return ``{command_name: handler}`` for extra remote-control commands.

    A worker answers them on ``celery.pidbox`` beside the built-in ones
    (a name taken by a built-in command is an error at worker start);
    ``app.control.broadcast(name, arguments={...}, reply=True)`` reaches
    them.  ``handler(ctx, **arguments)`` gets a
    `corekit.worker.commands.ControlContext` (worker, consumer, hostname,
    app) and returns the reply value (JSON-able; Celery's shape is
    ``{"ok": ...}`` or ``{"error": ...}``).  It runs on the worker's control
    thread, not the consumer's.  Decorate it with
    `corekit.worker.commands.inspect_command` or ``control_command`` to give
    it a signature and help for command lines.
    """


# -- settings: collected when an app first needs them -----------------------


@hookspec
def corekit_register_settings() -> Sequence[Setting]:
    """Return the `corekit.config.Setting` declarations (name, default,
    accepted type, one-line doc) of the settings this plugin reads.

    Called for every plugin when an app first needs to know every setting:
    when it finalizes, or earlier on the first read of a setting the kernel
    does not declare; answers are collected (none wins).  The kernel's
    settings come first, then each plugin's, plugins sorted by name.  A name
    the kernel or another plugin declares too is an `ImproperlyConfigured`
    naming both; the manager fills in ``Setting.plugin`` with this plugin's
    name.  ``app.conf`` then answers the plugin's settings with their
    defaults, warns about keys no one declares, and refuses values of the
    wrong type when the app finalizes.  Keep it cheap: no heavy imports.
    """


# -- lifecycle: every implementation runs, results ignored --------------------


@hookspec
def corekit_app_configure(app: Corekit) -> None:
    """Called once, when the app's configuration is first read (finalize)."""


@hookspec
def corekit_worker_start(worker: Worker) -> None:
    """Called after the worker's bootsteps have started, before it consumes."""


@hookspec
def corekit_worker_ready(worker: Worker) -> None:
    """Called when the worker starts consuming messages."""


@hookspec
def corekit_worker_shutdown(worker: Worker) -> None:
    """Called when the worker has stopped consuming, before its steps stop."""
