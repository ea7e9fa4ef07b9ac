"""Every hook a corekit plugin can implement.

Plugin-kind hooks are called once when the plugin manager builds its
registries; each returns a mapping ``name -> factory`` (or a list of codec
objects) and the manager merges the answers of all plugins.  A name supplied
by two plugins is an error, so a third-party plugin cannot silently shadow a
built-in one.  Nothing here is called on the per-message path: the manager
resolves these hooks into plain dicts at start-up.

Worker bootsteps and command-line hooks are collected from every plugin
once, when a worker or the ``corekit`` parser is built.  Lifecycle hooks are
called for every plugin that implements them, in pluggy's order (last
registered first); their return values are ignored.  The collected hooks are
read from the plugin modules as pluggy reads them (`corekit.hookimpls`),
without building pluggy's hook tables; pluggy dispatches the lifecycle hooks
and is imported the first time one of them is called.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from corekit.hookmarkers import HookimplMarker, HookspecMarker

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.bootsteps import Step
    from corekit.messages import Message
    from corekit.cli.options import CommandOption
    from corekit.result_backend import ResultBackend
    from corekit.pool import Pool
    from corekit.serialization import Compressor, Serializer
    from corekit.schedules.store import ScheduleStore
    from corekit.settings import Setting
    from corekit.task import Task
    from corekit.transport import Transport
    from corekit.worker import Worker

# pluggy's markers without importing pluggy (`corekit.hookmarkers` says why).
hookspec = HookspecMarker("corekit")
hookimpl = HookimplMarker("corekit")

# -- early interpreter patching: before corekit's kernel is imported ---------


@hookspec
def corekit_register_early_patches() -> Mapping[str, Callable[[], None]]:
    """Return ``{pool_name: patch}`` for pools that need the interpreter
    patched before anything binds ``socket``, ``threading`` or ``time``
    (eventlet's ``monkey_patch``).

    Called only when a ``corekit`` command line names a pool with ``-P`` /
    ``--pool``, at the very top of ``import corekit``, before the kernel,
    redis-py or the app module are imported: `corekit.early` asks the plugin
    manager, which imports plugin modules one by one, the one whose entry-point
    name is the pool's first, and calls the first *patch* found for that pool
    (first result wins; later plugins are not asked).  So this hook's module
    must import nothing but ``corekit.hookspecs`` at its top, and *patch*
    imports the patching library itself.  A pool named in the settings is
    seen too late for this: such a pool should refuse to start unpatched.
    When the worker builds its pool, every plugin's answer is merged: two
    plugins declaring a patch for one pool are an error naming both.
    """


# -- plugin kinds: called once, answers merged by name ------------------------


@hookspec
def corekit_register_transports() -> Mapping[str, type[Transport]]:
    """Return ``{url_scheme: Transport subclass}`` for the transports this
    plugin supplies (``"sqlite"``, ``"redis"``...).

    A value may be the ``"package.module:Class"`` string naming the class:
    the manager imports it the first time that scheme is asked for, so the
    plugin's module stays light (the same holds for result backends and
    pools)."""


@hookspec
def corekit_register_result_backends() -> Mapping[str, type[ResultBackend]]:
    """Return ``{url_scheme: ResultBackend subclass}`` (a class or its
    ``"module:Class"`` string).

    Called once per process, on the first result backend lookup (an app's
    first use of ``app.backend``); answers of all plugins are merged by
    scheme, a scheme two plugins supply is an error naming both."""


@hookspec
def corekit_register_schedule_stores() -> Mapping[str, type[ScheduleStore]]:
    """Return ``{url_scheme: ScheduleStore subclass}`` (a class or its
    ``"module:Class"`` string): where beats keep periodic tasks, their run
    state, the leader lease and the per-run claims
    (`corekit.schedules.store`).  The beat opens the store of
    ``beat_store_url``'s scheme."""


@hookspec
def corekit_register_serializers() -> Sequence[Serializer]:
    """Return the `Serializer` objects this plugin supplies.

    Called once per process, when an app first encodes or decodes a
    message; answers of all plugins are merged by ``Serializer.name``, a
    name two plugins supply is an error naming both."""


@hookspec
def corekit_register_compressors() -> Sequence[Compressor]:
    """Return the `Compressor` objects this plugin supplies.

    Called once per process, with the serializers; merged by
    ``Compressor.name`` (a name two plugins supply is an error naming both)."""


@hookspec
def corekit_register_pools() -> Mapping[str, type[Pool]]:
    """Return ``{pool_name: Pool subclass}`` (``"solo"``, ``"threads"``...;
    a class or its ``"module:Class"`` string).

    Called once per process, when the first worker builds its pool (and by
    ``corekit plugins``); merged by name, a name two plugins supply is an
    error naming both.  The pool reads its own settings from ``app.conf``."""


@hookspec
def corekit_register_control_commands() -> Mapping[str, Callable[..., Any]]:
    """Return ``{command_name: handler}`` for extra remote-control commands.

    Called once per process, when the first worker's remote-control step is
    created; answers are merged by name (a name two plugins supply is an
    error naming both).  A worker answers them on ``celery.pidbox`` beside the built-in ones
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


# -- worker bootsteps: collected when a worker is built ----------------------


@hookspec
def corekit_register_bootsteps() -> Sequence[type[Step]]:
    """Return the `corekit.bootsteps.Step` subclasses this plugin adds to
    every worker.

    Called once per `corekit.worker.Worker`, when it is constructed, for every
    plugin; the answers are collected (none wins).  The steps join the
    kernel's core steps (`corekit.worker.steps.CORE_STEPS`: transport, result
    backend, result writer, pool, lease heartbeat, consumer) in one
    `corekit.bootsteps.Blueprint`, which orders them all by their class
    ``requires``, creates and starts them in that order when the worker
    starts, and stops them in reverse.  A step may require core steps and
    steps of other plugins by class; a required class that no plugin adds,
    or a cycle, is an error naming the steps.  Two plugins adding steps of
    the same ``name`` is an error naming both.  ``Step.enabled(worker)`` may
    leave a step out of one worker.  Remote control and the worker's events
    come this way, from `corekit.optional_steps`.
    """


# -- command line: called once while ``corekit`` builds its parser -----------


@hookspec
def corekit_register_commands() -> Mapping[str, Callable[..., Any]]:
    """Return ``{command_name: setup}`` for ``corekit`` subcommands this
    plugin adds.

    Called once for every plugin when ``corekit`` builds its parser, after
    the built-in subcommands are added; answers are collected.  A name
    taken by a built-in command or by another plugin's is an error naming
    both.  ``setup(subparsers, parents)`` adds the sub-parser,
    ``subparsers.add_parser(name, parents=parents, help=...)``, where
    *parents* carries the options every command takes (``-A``, ``-b``...),
    and sets its ``func`` default to a callable ``func(args, app) -> int``
    that runs the command with the loaded app and returns its exit status.
    Keep ``setup`` cheap: ``corekit --help`` calls it; import what the
    command needs inside ``func``.
    """


@hookspec
def corekit_register_command_options() -> Mapping[str, Sequence[CommandOption]]:
    """Return ``{command_name: [CommandOption, ...]}``: options this plugin
    adds to existing ``corekit`` subcommands (``"worker"``...).

    Called once for every plugin when ``corekit`` builds its parser, after
    every subcommand (built-in and plugin) is added; answers are collected.
    Each `corekit.cli.options.CommandOption` names its flags, its argparse
    keywords and the setting it sets: when the user gives the flag, its
    value is stored in ``app.conf[setting]`` after the app is loaded and
    before the command runs, so the code that reads the setting needs no
    new argument.  An unknown command, or a flag that a built-in option or
    another plugin's already uses, is an error naming both.  A ``worker``
    option that only one pool reads names it (``CommandOption(...,
    pool="prefork")``): given to a worker of another pool, the flag is an
    error instead of a setting no one reads.
    """


# -- signals: connected when the process first sends or runs a task ----------


@hookspec
def corekit_register_signal_receivers() -> Mapping[str, Callable[..., Any] | str]:
    """Return ``{signal_name: receiver}``: receivers of `corekit.signals`
    (``"before_task_publish"``, ``"task_prerun"``...) this plugin connects,
    each a callable or its ``"module:attribute"`` string (imported only when
    connected, so ``corekit plugins`` imports nothing heavy).

    Collected from every plugin and connected (strongly, for every sender)
    once per process, by `PluginManager.connect_signal_receivers`: on the
    first task a process prepares for sending (`corekit.producer`), when a
    worker is set up (before its pool starts: prefork children inherit
    them), and on the first eager run.  Not at app creation: a process that
    sends and runs nothing pays nothing, and a signal no plugin connects to
    costs the hot path one attribute check.  A name that is not a corekit
    signal is an `ImproperlyConfigured` naming the plugin.  Receivers run as
    user receivers do: one that raises is logged and the task goes on.
    """


# -- task discovery: every implementation runs, answers combined --------------


@hookspec
def corekit_task_packages(app: Corekit) -> Sequence[str] | None:
    """Called when ``app.autodiscover_tasks()`` was given no packages, at
    the app's finalize (and again when a worker starts, if it was too early
    then): the packages whose ``tasks`` modules (or ``related_name``) to
    import.  The Django plugin answers with ``INSTALLED_APPS``' packages.
    Every implementation runs; the answers are combined, in order, without
    repeats.

    :param app: the app discovering its tasks.
    :return: package names, or None when this plugin has none to offer (or
        cannot tell yet: Django's apps still loading, say).  When every
        plugin answers None, discovery waits for the next chance.
    """


# -- sending -------------------------------------------------------------------


@hookspec(firstresult=True)
def corekit_on_commit(app: Corekit, callback: Callable[[], Any]) -> bool | None:
    """Called by ``Task.delay_on_commit`` and ``Task.apply_async_on_commit``:
    arrange for *callback* (which sends the task) to run once the current
    database transaction commits, and never if it rolls back.  The first
    implementation that returns True has taken it (the Django plugin, while
    Django is set up); when none does, the call is an error.

    :param app: the app sending the task.
    :param callback: sends the task; call it once, after the commit (at once
        when no transaction is open, as Django's ``on_commit`` does).
    :return: True when taken, None otherwise.
    """


@hookspec
def corekit_publish_failed(app: Corekit, messages: Sequence[Message],
                           exc: BaseException) -> None:
    """Called when publishing *messages* failed for good (its retries spent,
    just before `corekit.exceptions.PublishError` is raised to the sender):
    ``before_task_publish`` was sent for them and ``after_task_publish``
    never will be.  Only this path calls it, so a plugin that keeps state
    per message in flight (a tracing span) can end it.  Every
    implementation runs (last registered first); results are ignored, and
    one that raises is logged: the sender still gets the `PublishError`.

    :param app: the app that published.
    :param messages: the batch that was not published.
    :param exc: the `PublishError` about to be raised.
    """


# -- running: the first implementation that answers wins ----------------------


@hookspec(firstresult=True)
def corekit_find_task(app: Corekit, name: str, headers: Mapping[str, Any]
                      ) -> Task[Any, Any] | None:
    """Called by a worker when a task message names a task that is not in
    its app's registry (`Corekit.find_task`): in the consumer, before the
    message would be dead-lettered as unknown, and again in a prefork child
    that does not have the task.  Only such messages reach this hook, so
    registered tasks cost nothing.  The first implementation that returns a
    task wins; the message runs with it.

    A plugin that makes the task on *app* (``app.task(name=name)(...)``
    registers it) is not asked again for that name.  It may return an
    unregistered task whose run raises a clear error: the message then
    fails as that task's FAILURE instead of being dead-lettered (the Django
    plugin does so for a Django task whose module path cannot be imported).

    :param app: the worker's app.
    :param name: the message's task name.
    :param headers: the message's headers (untrusted: from the broker).
    :return: the task to run the message with, or None (when every plugin
        answers None, the message is dead-lettered as an unknown task).
    """


# -- lifecycle: every implementation runs, results ignored --------------------


@hookspec
def corekit_app_configure(app: Corekit) -> None:
    """Called once per app when it finalizes (its first real use: a worker's
    setup, ``app.tasks``, sending a task), after its configuration is
    complete and before the modules in ``include`` / ``imports`` are
    imported.  A plugin may read or complete ``app.conf`` here.  Every
    implementation runs, in pluggy's order (last registered first); results
    are ignored.

    :param app: the app being finalized.
    """


@hookspec
def corekit_worker_ready(worker: Worker) -> None:
    """Called once per worker, in the thread that runs it, after every
    bootstep has started and just before the consumer takes its first
    message (right before the ``worker_ready`` signal).  Not called when
    the worker stops before it was ready (e.g. SIGTERM while waiting for the
    broker).  Every implementation runs (last registered first); results are
    ignored; an exception stops the worker, its steps stopped in reverse.

    :param worker: the `corekit.worker.Worker`; its parts are reached through
        ``worker.blueprint[StepClass]``.
    """


@hookspec
def corekit_worker_shutdown(worker: Worker) -> None:
    """Called once per worker whose bootsteps started, in the thread that
    runs it, when its consumer has stopped taking messages (or a
    ``corekit_worker_ready`` implementation failed) and before its bootsteps
    stop (the ``worker_shutdown`` signal follows).  Every implementation runs
    (last registered first); results are ignored.

    :param worker: the `corekit.worker.Worker` stopping.
    """
