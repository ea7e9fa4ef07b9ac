"""The app's configuration: documented defaults, updates, environment
overrides and `config_from_object`."""
from __future__ import annotations

import importlib
import os
from typing import Any, Iterator, Mapping, MutableMapping

#: Every setting corekit reads, with its default.  Names are Celery's.
DEFAULTS: dict[str, Any] = {
    # broker and results
    "broker_url": None,                 # None -> "sqlite://" (corekit.sqlite3 in the cwd)
    "result_backend": None,             # None -> "sqlite://" as well
    "broker_transport_options": {},     # passed to the transport (e.g. lease_timeout)
    "broker_use_ssl": None,             # TLS settings for amqps:// (py-amqp's ssl dict)
    "broker_heartbeat": 2.0,            # seconds between worker heartbeats to the broker
    "broker_lease_timeout": 15.0,       # a silent worker's messages come back after this
    "broker_connection_retry_on_startup": True,  # a worker waits for a broker that is down
    "broker_connection_max_retries": 100,  # ...this many retries (None or 0: forever)
    "result_expires": 86400,            # seconds results are kept (None: forever)
    "result_max_size": 64 * 1024 * 1024,  # bytes; a larger encoded result fails its task
    "result_exception_modules": [],     # modules a stored exception may make get() import
    # messages
    "task_serializer": "json",
    "result_serializer": "json",
    "accept_content": ["json"],         # what a worker will deserialize
    "result_accept_content": None,      # None: same as accept_content
    "task_compression": None,           # "zlib", "bzip2", "zstd" or None
    "task_default_queue": "celery",
    "task_default_exchange": None,      # None -> the default queue's name
    "task_default_exchange_type": "direct",
    "task_default_routing_key": None,   # None -> the default queue's name
    "task_queues": None,                # kombu Queues, QueueSpecs or dicts (corekit.queues)
    "task_create_missing_queues": True, # an undeclared queue is created on first use
    "task_queue_max_priority": None,    # x-max-priority for queues corekit declares (AMQP)
    "task_routes": None,                # dict, glob patterns, function, or a list of them
    "task_default_priority": None,      # 0-9; None: 0
    "task_publish_retry": True,         # retry a publish that hits a broker error
    "task_publish_retry_policy": {"max_retries": 3, "interval_start": 0,
                                  "interval_step": 0.2, "interval_max": 0.2},
    # task defaults
    "task_always_eager": False,
    "task_eager_propagates": False,
    "task_store_eager_result": False,
    "task_ignore_result": False,
    "task_track_started": False,
    "task_acks_late": False,
    "task_default_retry_delay": 180,
    "task_time_limit": None,            # seconds; prefork kills the task (and its child) after
    "task_soft_time_limit": None,       # seconds; SoftTimeLimitExceeded is raised in the task
    "task_annotations": None,           # task attributes by task name or "*" (corekit.annotations)
    "task_reject_on_worker_lost": False,  # acks_late: requeue, not fail, when the child dies
    "task_acks_on_failure_or_timeout": True,  # acks_late: False dead-letters a failed task
    # worker
    "worker_pool": "threads",           # solo or threads (more pools come as plugins)
    "worker_concurrency": None,         # None -> number of CPUs
    "worker_prefetch_multiplier": 4,    # messages reserved per pool slot
    "worker_hostname": None,            # None -> corekit@<host>; -n name@%h
    "worker_disable_rate_limits": False,  # ignore every task's rate_limit
    "worker_revokes_expire": 10800,     # seconds a revocation is honoured (as Celery)
    "worker_redirect_stdouts": True,    # `corekit worker`: what tasks print goes to the log
    "worker_redirect_stdouts_level": "WARNING",
    "worker_max_tasks_per_child": None, # prefork: recycle a child after this many tasks
    "worker_max_memory_per_child": None,  # prefork: recycle a child past this RSS (KiB)
    "worker_autoscale": None,           # prefork: (max, min) children
    "worker_send_task_events": False,   # workers send task-* events (-E)
    "worker_max_message_size": 16 * 1024 * 1024,  # bytes of a task body, as sent and decompressed
    # events
    "task_send_sent_event": False,      # a task-sent event for each task a client publishes
    "event_max_field_size": 4096,       # bytes of args/result/traceback... in events (0: all)
    # web monitor
    "monitor_allowed_hosts": [],        # Host names it answers besides its address, localhost
    # app
    "include": [],                      # task modules imported when the app finalizes
    "imports": [],                      # same, Celery's older name
}

#: Environment variables that override a setting, whatever the app says.
ENV_OVERRIDES = {
    "COREKIT_BROKER_URL": "broker_url",
    "COREKIT_RESULT_BACKEND": "result_backend",
}

_ENV_FOR_SETTING = {setting: env for env, setting in ENV_OVERRIDES.items()}

DEFAULT_URL = "sqlite://"


class Settings(MutableMapping[str, Any]):
    """``app.conf``: a mapping with attribute access (``conf.task_serializer``).

    Lookup order: environment override, value set by the user, default.
    Unknown keys may be set (plugins read their own); reading an unknown
    key as an attribute raises AttributeError naming it.
    """

    def __init__(self, **changes: Any) -> None:
        object.__setattr__(self, "_changes", {})
        object.__setattr__(self, "version", 0)  # counts changes: caches key on it
        self.update(changes)

    def __getitem__(self, key: str) -> Any:
        env = _ENV_FOR_SETTING.get(key)
        if env and os.environ.get(env):
            return os.environ[env]
        changes = self._changes
        if key in changes:
            return changes[key]
        return DEFAULTS[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._changes[key] = value
        object.__setattr__(self, "version", self.version + 1)

    def __delitem__(self, key: str) -> None:
        del self._changes[key]
        object.__setattr__(self, "version", self.version + 1)

    def __iter__(self) -> Iterator[str]:
        yield from DEFAULTS
        yield from (k for k in self._changes if k not in DEFAULTS)

    def __len__(self) -> int:
        return len(set(DEFAULTS) | set(self._changes))

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"no setting called {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def changes(self) -> dict[str, Any]:
        """Only what the user set."""
        return dict(self._changes)

    @property
    def broker(self) -> str:
        return self["broker_url"] or DEFAULT_URL

    @property
    def backend(self) -> str:
        return self["result_backend"] or DEFAULT_URL

    def from_object(self, obj: Any) -> None:
        """Load every lowercase public attribute of *obj* (a module path,
        ``"module:attr"``, a module or any object) that is a setting name,
        or every key of a mapping."""
        if isinstance(obj, str):
            obj = _import_object(obj)
        if isinstance(obj, Mapping):
            self.update(obj)
            return
        for key in dir(obj):
            if key.islower() and not key.startswith("_"):
                value = getattr(obj, key)
                if not callable(value) or key in DEFAULTS:
                    self[key] = value


def _import_object(path: str) -> Any:
    module, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj
