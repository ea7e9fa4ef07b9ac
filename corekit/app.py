"""`Corekit`: the application object.

How a call becomes a published message (prepare, route, publish, publish
retry) is `corekit.producer`'s; the app's sending methods delegate there.
"""
from __future__ import annotations

import functools
import importlib
import threading
import weakref
from typing import (TYPE_CHECKING, Any, Callable, Concatenate, Literal, Mapping, ParamSpec,
                    Sequence, TypeVar, overload)

from corekit.app_signals import AppSignals
from corekit.config import Settings, declared_settings
from corekit.exceptions import ImproperlyConfigured
from corekit.registry import TaskRegistry
from corekit.task import Task

if TYPE_CHECKING:
    from corekit.discovery import Packages, TaskDiscovery
    from corekit.result_backend import ResultBackend
    from corekit.control_client import Control
    from corekit.pluginmanager import PluginManager
    from corekit.queues import Queues
    from corekit.result import AsyncResult, GroupResult
    from corekit.routing import Router
    from corekit.serialization import Codecs
    from corekit.messages import Message
    from corekit.transport import Transport

P = ParamSpec("P")
R = TypeVar("R")

_latest: weakref.ref[Corekit] | None = None
#: connections a forked child inherited: kept referenced, never finalized
#: (closing them would close the parent's session on the broker)
_inherited: list[Any] = []


def current_app() -> Corekit:
    """The most recently created app that is still alive (or a new default one)."""
    app = _latest() if _latest is not None else None
    return app if app is not None else Corekit("default")


class Corekit:
    """The app: configuration, task registry, and the way to the broker and
    the result backend.  Nothing is connected or imported until first use.

    ``broker`` defaults to ``sqlite://`` (a ``corekit.sqlite3`` file in the
    working directory); ``backend`` to where the broker keeps results (the
    same URL, or ``rpc://`` for AMQP).  The config file (``corekit.toml``,
    or ``pyproject.toml``'s ``[tool.corekit]``) and ``COREKIT_<SETTING>``
    environment variables (``COREKIT_BROKER_URL``...) override whatever the
    code says (`corekit.config_sources`).
    """

    def __init__(self, main: str | None = None, broker: str | None = None,
                 backend: str | None = None, include: Sequence[str] | None = None,
                 plugin_manager: PluginManager | None = None, **config: Any) -> None:
        self.main = main
        self.conf = Settings(**config)
        # the plugins' settings are known when first needed, not at creation
        self.conf.use_declarations(lambda: declared_settings(self.plugins))
        if broker:
            self.conf.broker_url = broker
        if backend:
            self.conf.result_backend = backend
        if include:
            self.conf.include = list(include)
        # the config file and COREKIT_* variables win over the code (flags over both)
        self.conf.read_sources()
        self.conf.use_results_for(self._results_for_broker)
        self._registry = TaskRegistry()
        self._plugin_manager = plugin_manager
        self._lock = threading.RLock()
        self._finalized = False
        #: task_annotations, prepared when the app finalizes (`corekit.annotations`)
        self._annotations: list[Any] = []
        self._producer: Transport | None = None
        self._backend: ResultBackend | None = None
        self._router: tuple[Any, Router] | None = None
        self._queues: tuple[int, Queues] | None = None
        self._app_signals = AppSignals()
        self._discovery: TaskDiscovery | None = None
        from corekit.builtin_tasks import register_builtins

        register_builtins(self)
        from corekit.shared_tasks import register_shared_tasks

        register_shared_tasks(self)
        global _latest
        _latest = weakref.ref(self)

    def __repr__(self) -> str:
        return f"<Corekit {self.main or '__main__'}:{id(self):#x}>"

    # -- configuration ---------------------------------------------------------
    def config_from_object(self, obj: Any, namespace: str | None = None) -> None:
        """Load settings from a module path (``"proj.settings"``), an object
        or a mapping; with *namespace*, its ``NAMESPACE_NAME`` uppercase
        names (``"django.conf:settings", namespace="COREKIT"``).  Must come
        before the app is used."""
        self.conf.from_object(obj, namespace)

    @property
    def plugins(self) -> PluginManager:
        if self._plugin_manager is None:
            from corekit.pluginmanager import default_manager

            self._plugin_manager = default_manager()
        return self._plugin_manager

    def finalize(self) -> None:
        """Check the configuration against the declared settings, import
        ``include`` modules, let plugins see the configuration and apply
        ``task_annotations`` to every task (and to those registered
        later); runs once, on first use."""
        with self._lock:
            if self._finalized:
                return
            from corekit.annotations import annotate, prepare

            self.conf.check()  # unknown keys warn; wrong types raise, all listed
            annotations = prepare(self.conf.task_annotations)  # a bad one raises here
            self._finalized = True
            self._annotations = annotations
            if self.plugins.implements("corekit_app_configure"):  # else pluggy is not needed
                self.plugins.hook.corekit_app_configure(app=self)
            self._app_signals.send("on_after_configure", self, source=self.conf)
            for module in list(self.conf.include) + list(self.conf.imports):
                importlib.import_module(module)
            self.discover_tasks()
            if annotations:
                for task in list(self._registry.values()):
                    annotate(task, annotations)
            self._app_signals.send("on_after_finalize", self)

    def autodiscover_tasks(self, packages: Packages = None, related_name: str = "tasks",
                           force: bool = False) -> None:
        """Import the *related_name* module of each package: *packages* (a
        list, or a callable returning one, read when discovery runs), or
        every package a plugin names (Django's installed apps) when None.
        It runs when the app finalizes, or at once with *force* or if the
        app already has (`corekit.discovery`)."""
        with self._lock:
            if self._discovery is None:
                from corekit.discovery import TaskDiscovery

                self._discovery = TaskDiscovery(self)
            self._discovery.ask(packages, related_name)
            if force or self._finalized:
                self._discovery.run()

    def discover_tasks(self, report: bool = False) -> list[str]:
        """Run the discoveries asked for that can run now (a worker calls it
        as it starts, with *report*: one left waiting is logged); the
        modules imported."""
        return self._discovery.run(report) if self._discovery is not None else []

    @property
    def on_after_configure(self) -> Any:
        """Celery's signal, sent when the app finalizes (its configuration is
        read): the place for `add_periodic_task`.  ``sender`` is the app,
        ``source`` its ``conf``."""
        return self._app_signals.get("on_after_configure")

    @property
    def on_after_finalize(self) -> Any:
        """Celery's signal, sent after the app finalized (task modules imported)."""
        return self._app_signals.get("on_after_finalize")

    @property
    def tasks(self) -> TaskRegistry:
        self.finalize()
        return self._registry

    @property
    def router(self) -> Router:
        """``task_routes``, prepared on first use and again if it is replaced."""
        from corekit.routing import Router

        routes = self.conf.task_routes
        if self._router is None or self._router[0] is not routes:
            self._router = (routes, Router(routes))
        return self._router[1]

    @property
    def queues(self) -> Queues:
        """``task_queues`` and the defaults around it, prepared on first use
        and again when one of those settings changes."""
        cached = self._queues
        if cached is not None and cached[0] == self.conf.version:
            return cached[1]
        from corekit.queues import Queues

        self._queues = (self.conf.version, Queues(self.conf))
        return self._queues[1]

    @functools.cached_property
    def control(self) -> Control:
        """Revoke tasks and broadcast commands to the workers (`corekit.control_client`)."""
        from corekit.control_client import Control

        return Control(self)

    @functools.cached_property
    def codecs(self) -> Codecs:
        from corekit.serialization import Codecs

        return Codecs(self.plugins.registry("serializers").values(),
                      self.plugins.registry("compressors").values())

    # -- tasks ----------------------------------------------------------------
    @overload
    def task(self, fn: Callable[P, R]) -> Task[P, R]: ...

    @overload
    def task(self, *, bind: Literal[True], name: str | None = ..., base: type[Task[Any, Any]] = ...,
             **options: Any) -> Callable[[Callable[Concatenate[Any, P], R]], Task[P, R]]: ...

    @overload
    def task(self, *, name: str | None = ..., base: type[Task[Any, Any]] = ...,
             **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Make a task of a function: ``@app.task`` or ``@app.task(**options)``.

        Options are `Task` attributes (``bind``, ``name``, ``ignore_result``,
        ``max_retries``, ``autoretry_for``...) and ``base`` for a custom class.
        """
        if fn is not None:
            return self._make_task(fn, options)
        return lambda f: self._make_task(f, options)

    def _make_task(self, fn: Callable[..., Any], options: dict[str, Any]) -> Task[Any, Any]:
        from corekit.task_factory import make_task

        task = make_task(self, fn, options)
        if self._annotations:  # registered after the app finalized
            from corekit.annotations import annotate

            annotate(task, self._annotations)
        return task

    def find_task(self, name: str, headers: Mapping[str, Any] | None = None
                  ) -> Task[Any, Any] | None:
        """The task a worker runs a message naming *name* with: the
        registered one, else what a plugin makes of the name
        (``corekit_find_task``; *headers* are the message's), else None."""
        task = self.tasks.get(name)
        if task is None and self.plugins.implements("corekit_find_task"):
            task = self.plugins.hook.corekit_find_task(app=self, name=name,
                                                       headers=dict(headers or {}))
        return task

    def gen_task_name(self, name: str, module: str) -> str:
        if module == "__main__" and self.main:
            module = self.main
        return f"{module}.{name}"

    # -- broker and results ------------------------------------------------------
    def connection(self) -> Transport:
        """A new transport for the configured broker (one per consumer)."""
        url = check_url(self.conf.broker, "broker")
        scheme = url.partition("://")[0]
        factory = self.plugins.get("transports", scheme)
        options = {"heartbeat": self.conf.broker_heartbeat,
                   "lease_timeout": self.conf.broker_lease_timeout,
                   "queues": self.queues,
                   "ssl": self.conf.broker_use_ssl,
                   **self.conf.broker_transport_options}
        return factory(url, options)

    def _results_for_broker(self, broker_url: str) -> str | None:
        """Where results go when no result backend is set: where the broker's
        transport keeps them (`Transport.results_url`), None for a broker
        URL no transport takes (the default then; using the broker fails)."""
        scheme = broker_url.partition("://")[0]
        if scheme not in self.plugins.registry("transports"):
            return None
        return self.plugins.get("transports", scheme).results_url(broker_url)

    @property
    def producer(self) -> Transport:
        """The transport this process publishes with (shared, thread-safe)."""
        with self._lock:
            if self._producer is None:
                self._producer = self.connection()
            return self._producer

    @property
    def backend(self) -> ResultBackend:
        with self._lock:
            if self._backend is None:
                url = check_url(self.conf.backend, "result backend",
                                self.plugins.registry("result_backends"))
                factory = self.plugins.get("result_backends", url.partition("://")[0])
                conf = self.conf
                self._backend = factory(url, self.codecs, {
                    "result_serializer": conf.result_serializer,
                    # the configured result serializer is always trusted for results
                    "result_accept_content": (conf.result_accept_content
                                              or [*conf.accept_content, conf.result_serializer]),
                    "result_expires": conf.result_expires,
                    "result_max_size": conf.result_max_size,
                    "result_exception_modules": conf.result_exception_modules,
                    # rpc:// replies through the broker
                    "broker_url": conf.broker, "broker_use_ssl": conf.broker_use_ssl})
            return self._backend

    def close(self) -> None:
        """Close the producer and the backend (they reopen on next use)."""
        with self._lock:
            self.close_producer()
            if self._backend is not None:
                self._backend.close()
                self._backend = None

    def after_fork(self) -> None:
        """In a forked child: forget the producer and backend inherited from
        the parent without closing them (the parent still talks over those
        sockets), so the child opens its own on first use."""
        self._lock = threading.RLock()  # another thread may have held it at fork
        _inherited.extend(x for x in (self._producer, self._backend) if x is not None)
        self._producer = None
        self._backend = None

    # -- sending -------------------------------------------------------------------
    def send_task(self, name: str, args: Sequence[Any] | None = None,
                  kwargs: Mapping[str, Any] | None = None, *, retry: bool | None = None,
                  retry_policy: Mapping[str, Any] | None = None,
                  **options: Any) -> AsyncResult[Any]:
        """Send a task by name (it need not be registered here); the options
        are `prepare_task`'s.

        ``countdown`` (seconds) or ``eta`` (datetime; naive means UTC) delay
        it; ``expires`` (seconds or datetime) drops it if it has not started
        by then.  Without ``queue``, ``task_routes`` decides (see
        `corekit.routing`); a bare ``routing_key`` on the default exchange
        names the queue.  A publish that fails is retried per
        ``retry_policy`` (``task_publish_retry_policy``); ``retry=False``
        fails at once.  ``link``/``link_error`` (signatures, one or a list)
        run after it succeeds/fails; ``chain`` and ``chord`` are the canvas's
        own (`corekit.canvas`).  Returns an `AsyncResult`.
        """
        import corekit.producer as producer  # not at import: app creation does without it

        return producer.send_task(self, name, args, kwargs, retry, retry_policy, options)

    def prepare_task(self, name: str, args: Sequence[Any] | None = None,
                     kwargs: Mapping[str, Any] | None = None, **options: Any) -> Message:
        """The message `send_task` would publish, not yet published (a group
        publishes all of its messages at once with `publish_tasks`); the
        options are `corekit.producer.prepare_task`'s."""
        import corekit.producer as producer  # not at import: app creation does without it

        return producer.prepare_task(self, name, args, kwargs, **options)

    def publish_tasks(self, messages: Sequence[Message], retry: bool | None = None,
                      retry_policy: Mapping[str, Any] | None = None) -> None:
        """Publish task messages made by `prepare_task` in one batch, with
        the publish signals around each."""
        import corekit.producer as producer  # not at import: app creation does without it

        producer.publish_tasks(self, messages, retry, retry_policy)

    def publish(self, messages: Sequence[Message], retry: bool | None = None,
                retry_policy: Mapping[str, Any] | None = None) -> None:
        """Publish with the producer, retrying a broker error as the policy
        says; `PublishError` (naming the broker, password masked) at the end."""
        import corekit.producer as producer  # not at import: app creation does without it

        producer.publish(self, messages, retry, retry_policy)

    def close_producer(self) -> None:
        with self._lock:
            if self._producer is not None:
                try:
                    self._producer.close()
                finally:
                    self._producer = None

    def add_periodic_task(self, schedule: Any, sig: Any, args: Sequence[Any] = (),
                          kwargs: Mapping[str, Any] | None = None, name: str | None = None,
                          **options: Any) -> str:
        """Add ``sig`` (a signature, or a task) to ``beat_schedule``, as
        Celery's does: run on *schedule* (seconds, a timedelta or a
        `corekit.schedules` schedule), under *name* (default: the
        signature's repr); *args*/*kwargs* are merged into the signature's,
        *options* into its options.  Returns the entry's name.  Entries are
        checked at once (`corekit.schedules.entry.ScheduleError` names the
        entry and field) and reach the schedule store when a beat starts."""
        from corekit.schedules.periodic import add_periodic_task

        return add_periodic_task(self, schedule, sig, args, kwargs, name, **options)

    def AsyncResult(self, task_id: str) -> AsyncResult[Any]:  # noqa: N802 - Celery's name
        from corekit.result import AsyncResult

        return AsyncResult(task_id, app=self)

    def GroupResult(self, group_id: str, results: Sequence[Any] | None = None  # noqa: N802
                    ) -> GroupResult:
        """A group's results: the given ones, or those saved under *group_id*."""
        from corekit.result import GroupResult

        if results is None:
            return GroupResult.restore(group_id, app=self)
        return GroupResult(group_id, list(results), app=self)

    def signature(self, *args: Any, **kwargs: Any) -> Any:
        """`corekit.canvas.signature` for this app."""
        from corekit.canvas import signature

        return signature(*args, app=self, **kwargs)

    # -- worker --------------------------------------------------------------------
    def Worker(self, **options: Any) -> Any:  # noqa: N802 - Celery's name
        from corekit.worker import Worker

        return Worker(self, **options)


def check_url(url: str, what: str, schemes: Mapping[str, Any] = {}) -> str:
    """*url* with its scheme; a bare scheme name among *schemes* stands for
    ``scheme://`` (``"django-db"``, as Celery writes it)."""
    if "://" not in url:
        if url in schemes:
            return f"{url}://"
        raise ImproperlyConfigured(f"{what} URL {url!r} has no scheme: expected scheme://... "
                                   f"(corekit plugins lists the installed schemes)")
    return url
