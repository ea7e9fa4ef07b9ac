"""Every setting the kernel reads, declared once: name, default, accepted
type, one-line doc.  Names are Celery's where Celery has the setting.

Plugins declare their own settings through ``corekit_register_settings``;
`corekit.settings.declared_settings` merges them after these, and the
configuration reference is generated from that merge.
"""
from __future__ import annotations

from datetime import timedelta

from corekit.settings import Setting

_STRINGS = (list, tuple)

#: The kernel's settings, grouped: broker and results, messages, task
#: defaults, worker, events, web monitor, app.
KERNEL_SETTINGS: tuple[Setting, ...] = (
    # -- broker and results
    Setting("broker_url", None, str,
            "Broker URL; None: the embedded default (corekit.sqlite3 in the working directory)."),
    Setting("result_backend", None, str, "Result backend URL; None: where the broker keeps results."),
    Setting("broker_transport_options", {}, dict,
            "Options passed to the transport as they are (e.g. lease_timeout)."),
    Setting("broker_use_ssl", None, (dict, bool),
            "TLS options of the broker connection (a dict of ssl options), or True for defaults."),
    Setting("broker_heartbeat", 2.0, float, "Seconds between the worker's heartbeats to the broker."),
    Setting("broker_lease_timeout", 15.0, float,
            "Seconds after which a silent worker's messages go back to the queue."),
    Setting("broker_connection_retry_on_startup", True, bool,
            "A worker that starts while the broker is down waits for it."),
    Setting("broker_connection_max_retries", 100, int,
            "How many times a starting worker retries the broker (None or 0: forever).",
            nullable=True),
    Setting("result_expires", 86400, (float, timedelta),
            "Seconds (or a timedelta) results are kept; None keeps them forever.", nullable=True),
    Setting("result_max_size", 64 * 1024 * 1024, int,
            "Bytes of an encoded result; a larger one fails its task."),
    Setting("result_exception_modules", [], _STRINGS,
            "Modules a stored exception may name for get() to rebuild it with its own type."),
    # -- messages
    Setting("task_serializer", "json", str, "Serializer of task messages."),
    Setting("result_serializer", "json", str, "Serializer of stored results."),
    Setting("result_extended", False, bool,
            "Store each task's name, args, kwargs, worker, retries and queue with its result."),
    Setting("accept_content", ["json"], _STRINGS,
            "Serializers (or content types) a worker will deserialize."),
    Setting("result_accept_content", None, _STRINGS,
            "Serializers a client will deserialize results from; None: as accept_content."),
    Setting("task_compression", None, str,
            "Compression of task bodies, by compressor name; None: none."),
    Setting("task_default_queue", "celery", str, "Queue of a task that no route sends elsewhere."),
    Setting("task_default_exchange", None, str, "Exchange of the default queue; None: its name."),
    Setting("task_default_exchange_type", "direct", str,
            "Type of the default exchange: direct, topic or fanout."),
    Setting("task_default_routing_key", None, str,
            "Routing key of the default queue; None: its name."),
    Setting("task_queues", None, object,
            "Queues: kombu Queues, corekit QueueSpecs or dicts (see corekit.queues)."),
    Setting("task_create_missing_queues", True, bool,
            "An undeclared queue is created on first use instead of refused."),
    Setting("task_queue_max_priority", None, int,
            "x-max-priority of the queues corekit declares (brokers with priorities)."),
    Setting("task_routes", None, object,
            "Where tasks go: a dict, glob patterns, a function, or a list of them."),
    Setting("task_default_priority", None, int, "Priority of a task that names none (0-9); None: 0."),
    Setting("task_publish_retry", True, bool, "Retry a publish that hits a broker error."),
    Setting("task_publish_retry_policy",
            {"max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
            dict, "How a failed publish is retried: max_retries and interval_* seconds."),
    # -- task defaults
    Setting("task_always_eager", False, bool, "Run tasks in the caller at once, not on a worker."),
    Setting("task_eager_propagates", False, bool, "An eager task's exception is raised by apply()."),
    Setting("task_store_eager_result", False, bool, "Store an eager task's result in the backend."),
    Setting("task_ignore_result", False, bool, "Tasks store no result unless they say otherwise."),
    Setting("task_track_started", False, bool, "Tasks report a STARTED state when they start."),
    Setting("task_acks_late", False, bool,
            "Acknowledge a task message after the task ran, not before."),
    Setting("task_default_retry_delay", 180, float, "Seconds before a retried task runs again."),
    Setting("task_time_limit", None, float,
            "Hard time limit in seconds: pools that can kill a task (and its process) do."),
    Setting("task_soft_time_limit", None, float,
            "Soft time limit in seconds: SoftTimeLimitExceeded is raised in the task."),
    Setting("task_annotations", None, object,
            "Task attributes by task name or '*' (see corekit.annotations)."),
    Setting("task_reject_on_worker_lost", False, bool,
            "With acks_late: requeue, not fail, a task whose process died."),
    Setting("task_acks_on_failure_or_timeout", True, bool,
            "With acks_late: False dead-letters a failed task instead of acknowledging it."),
    # -- worker
    Setting("worker_pool", "threads", str, "Pool that runs tasks; any pool a plugin provides."),
    Setting("worker_concurrency", None, int, "Pool slots; None: the number of CPUs."),
    Setting("worker_prefetch_multiplier", 4, int, "Messages a worker reserves per pool slot."),
    Setting("worker_hostname", None, str, "Node name; None: corekit@<host> (-n name@%h)."),
    Setting("worker_disable_rate_limits", False, bool, "Ignore every task's rate_limit."),
    Setting("worker_revokes_expire", 10800, float, "Seconds a revocation is honoured."),
    Setting("worker_redirect_stdouts", True, bool,
            "`corekit worker`: what tasks print goes to the log."),
    Setting("worker_redirect_stdouts_level", "WARNING", str,
            "Log level of what tasks print (with worker_redirect_stdouts)."),
    Setting("worker_send_task_events", False, bool, "Workers send task-* events (-E)."),
    Setting("log_format", "text", str,
            "Log format of worker, beat, events and monitor: text, or JSON (one object a line)."),
    Setting("worker_max_message_size", 16 * 1024 * 1024, int,
            "Bytes of a task body, as sent and as decompressed; a larger one is dead-lettered."),
    # -- events
    Setting("task_send_sent_event", False, bool,
            "A client sends a task-sent event for each task it publishes."),
    Setting("event_max_field_size", 4096, int,
            "Bytes of args, result, traceback... kept in events (0: all)."),
    # -- web monitor
    Setting("monitor_allowed_hosts", [], _STRINGS,
            "Host names the web monitor answers besides its address and localhost."),
    # -- periodic tasks
    Setting("beat_schedule", {}, dict,
            "Periodic tasks by name ({task, schedule, args, ...}), synced to the store at beat start."),
    Setting("beat_store_url", None, str,
            "Schedule store of periodic tasks; None: the broker's URL, else the result backend's."),
    Setting("timezone", None, str,
            "IANA zone of crontab schedules that name none (nor does their entry); None: UTC."),
    # -- app
    Setting("include", [], _STRINGS, "Task modules imported when the app finalizes."),
    Setting("imports", [], _STRINGS, "Task modules imported when the app finalizes (Celery's "
                                     "older name for include)."),
)

#: ``{name: default}`` of the kernel's settings (read-only use).
DEFAULTS = {setting.name: setting.default for setting in KERNEL_SETTINGS}
