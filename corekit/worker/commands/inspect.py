"""Inspect commands: what a worker runs, holds, knows and is configured with,
in the shapes Celery's ``celery inspect`` and Flower read."""
from __future__ import annotations

import os
import platform
import resource
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Mapping
from urllib.parse import urlsplit

from corekit.transport import mask_url
from corekit.worker.commands.registry import ControlContext, inspect_command, ok

if TYPE_CHECKING:
    from corekit.queues import QueueSpec
    from corekit.worker.job import Job

#: Task attributes ``registered`` shows by default (Celery's).
DEFAULT_TASK_INFO_ITEMS = ("exchange", "routing_key", "rate_limit")
#: Setting names holding secrets: their values are masked in ``conf`` and ``report``.
SECRET_WORDS = ("password", "passwd", "secret", "token", "key", "signature")
MASK = "********"


# -- requests -------------------------------------------------------------------------
def request_info(ctx: ControlContext, job: Job, safe: bool = False,
                 running: bool = False) -> dict[str, Any]:
    """A job as Celery's ``Request.info()``."""
    h, m = job.headers, job.message
    raw = m.headers if isinstance(m.headers, dict) else {}
    return {
        "id": job.id, "name": h.task, "type": h.task, "hostname": ctx.hostname,
        "args": raw.get("argsrepr") if safe else job.args,
        "kwargs": raw.get("kwargsrepr") if safe else job.kwargs,
        "time_start": job.started_at if running else None,
        "acknowledged": running and not job.acks_late,
        "delivery_info": {"exchange": m.exchange, "routing_key": m.routing_key,
                          "priority": m.priority, "redelivered": m.redelivered},
        "worker_pid": ctx.worker.pool.pid_of(job) if running else None,
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


@inspect_command(alias="dump_active", signature="[safe=False]")
def active(ctx: ControlContext, safe: bool = False, **kwargs: Any) -> list[dict[str, Any]]:
    """Tasks running now."""
    return [request_info(ctx, job, safe, running=True)
            for job in list(ctx.consumer.running.values())]


@inspect_command(alias="dump_reserved")
def reserved(ctx: ControlContext, safe: bool = False, **kwargs: Any) -> list[dict[str, Any]]:
    """Tasks received and not started yet (waiting for a slot, their ETA or
    their rate limit)."""
    return [request_info(ctx, job, safe) for job in ctx.step.tracker.reserved()]


@inspect_command(alias="dump_schedule")
def scheduled(ctx: ControlContext, safe: bool = False, **kwargs: Any) -> list[dict[str, Any]]:
    """Tasks waiting in this worker's timer: for a token of their rate limit,
    or for an ETA the broker could not keep.  (Every built-in broker keeps
    ETA tasks itself until they are due, so those are not here.)"""
    waiting = sorted(list(ctx.consumer.waiting.values()), key=lambda entry: entry[0])
    return [{"eta": _iso(due), "priority": job.message.priority,
             "request": request_info(ctx, job, safe)} for due, job in waiting]


@inspect_command(variadic="ids", signature="[id1 [id2 [... [idN]]]]")
def query_task(ctx: ControlContext, ids: Any = (), **kwargs: Any) -> dict[str, Any]:
    """Where tasks are in this worker: ``{id: [state, request]}``, state
    ``active``, ``scheduled`` or ``reserved``; unknown ids are left out."""
    wanted = {ids} if isinstance(ids, str) else set(ids or ())
    found: dict[str, Any] = {}
    for job in ctx.step.tracker.reserved():
        if job.id in wanted:
            found[job.id] = ["reserved", request_info(ctx, job)]
    for _, job in list(ctx.consumer.waiting.values()):
        if job.id in wanted:
            found[job.id] = ["scheduled", request_info(ctx, job)]
    for job in list(ctx.consumer.running.values()):
        if job.id in wanted:
            found[job.id] = ["active", request_info(ctx, job, running=True)]
    return found


@inspect_command(alias="dump_revoked")
def revoked(ctx: ControlContext, **kwargs: Any) -> list[str]:
    """Ids of the tasks this worker will not run."""
    return ctx.consumer.revoked.ids()


@inspect_command(alias="dump_tasks", variadic="taskinfoitems",
                 signature="[attr1 [attr2 [... [attrN]]]]")
def registered(ctx: ControlContext, taskinfoitems: Iterable[str] | None = None,
               builtins: bool = False, **kwargs: Any) -> list[str]:
    """Names of the tasks this worker can run, each with the attributes
    asked for that are set (``name [rate_limit=10/s]``)."""
    tasks = ctx.app.tasks
    items = list(taskinfoitems or DEFAULT_TASK_INFO_ITEMS)
    names = sorted(tasks) if builtins else tasks.user_tasks()
    out = []
    for name in names:
        fields = [f"{item}={getattr(tasks[name], item)}" for item in items
                  if getattr(tasks[name], item, None) is not None]
        out.append(f"{name} [{' '.join(fields)}]" if fields else name)
    return out


@inspect_command(default_timeout=0.2)
def ping(ctx: ControlContext, **kwargs: Any) -> dict[str, str]:
    """Is the worker there?"""
    return ok("pong")


@inspect_command()
def clock(ctx: ControlContext, **kwargs: Any) -> dict[str, int]:
    """The worker's logical clock."""
    return {"clock": ctx.step.clock.value}


# -- the worker -----------------------------------------------------------------------
@inspect_command()
def stats(ctx: ControlContext, **kwargs: Any) -> dict[str, Any]:
    """Statistics and facts about the worker, as Celery's ``stats``."""
    return {"total": dict(ctx.step.tracker.total), "pid": os.getpid(),
            "clock": str(ctx.step.clock.value),
            "uptime": round(time.time() - ctx.step.started_at),
            "pool": pool_info(ctx), "broker": broker_info(ctx),
            "prefetch_count": ctx.consumer.prefetch_limit, "rusage": rusage()}


def pool_info(ctx: ControlContext) -> dict[str, Any]:
    pool = ctx.worker.pool
    options = pool.options
    info = pool.info()
    info.update({
        "max-concurrency": pool.concurrency,
        "processes": info.get("processes", [os.getpid()]),
        "max-tasks-per-child": options.get("max_tasks_per_child") or "N/A",
        "timeouts": [options.get("soft_time_limit") or 0, options.get("time_limit") or 0]})
    if pool.autoscaling is not None:
        info["autoscale"] = list(pool.autoscaling)
    return info


def broker_info(ctx: ControlContext) -> dict[str, Any]:
    """The broker connection as kombu's ``Connection.info()``, no password."""
    transport = ctx.consumer.transport
    parts = urlsplit(transport.url)
    return {"hostname": parts.hostname, "port": parts.port, "userid": parts.username,
            "virtual_host": (parts.path.lstrip("/") or None) if parts.hostname else None,
            "transport": transport.scheme,
            "uri": mask_url(transport.url), "ssl": parts.scheme in transport.tls_schemes,
            "heartbeat": transport.heartbeat_interval,
            "transport_options": masked(ctx.app.conf.broker_transport_options)}


def rusage() -> dict[str, Any]:
    s = resource.getrusage(resource.RUSAGE_SELF)
    return {name: getattr(s, "ru_" + name) for name in (
        "utime", "stime", "maxrss", "ixrss", "idrss", "isrss", "minflt", "majflt", "nswap",
        "inblock", "oublock", "msgsnd", "msgrcv", "nsignals", "nvcsw", "nivcsw")}


@inspect_command(alias="dump_conf", signature="[include_defaults=False]",
                 args=[("with_defaults", lambda text: text.lower() in ("1", "true", "yes"))])
def conf(ctx: ControlContext, with_defaults: bool = False, **kwargs: Any) -> dict[str, Any]:
    """The worker's settings (those set, or all with *with_defaults*), secrets masked."""
    settings = ctx.app.conf
    table = dict(settings) if with_defaults else settings.changes()
    return masked(table)


def masked(table: Mapping[str, Any]) -> dict[str, Any]:
    """*table* as JSON-able data, with secrets masked: values of keys naming
    a password, secret, token or key (not routing keys), and passwords in URLs."""
    return {str(k): _mask(str(k), v) for k, v in table.items()
            if not str(k).startswith("__")}


def _mask(key: str, value: Any) -> Any:
    name = key.lower()
    if isinstance(value, Mapping):
        return masked(value)
    if value and any(word in name for word in SECRET_WORDS) and "routing_key" not in name:
        return MASK
    if isinstance(value, str):
        return mask_url(value) if "://" in value else value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_mask(key, v) for v in value]
    return repr(value)


@inspect_command()
def report(ctx: ControlContext, **kwargs: Any) -> dict[str, str]:
    """Versions, platform and settings, for bug reports."""
    from corekit import __version__

    lines = [f"software -> corekit:{__version__} python:{platform.python_version()}",
             f"platform -> system:{platform.system()} arch:{platform.machine()} "
             f"kernel version:{platform.release()} imp:{sys.implementation.name}",
             f"settings -> transport:{ctx.consumer.transport.scheme} "
             f"results:{mask_url(ctx.app.conf.backend)}", ""]
    lines += [f"{k}: {v!r}" for k, v in sorted(masked(ctx.app.conf.changes()).items())]
    return ok("\n".join(lines) + "\n")


# -- queues ---------------------------------------------------------------------------
@inspect_command()
def active_queues(ctx: ControlContext, **kwargs: Any) -> list[dict[str, Any]]:
    """The queues this worker consumes, as kombu's ``Queue.as_dict()``."""
    known = worker_queues(ctx)
    return [queue_dict(known.get(name)) for name in list(ctx.consumer.queues)]


def worker_queues(ctx: ControlContext) -> Any:
    """The `Queues` the worker's transport declares from (the app's)."""
    return ctx.consumer.transport.options.get("queues") or ctx.app.queues


def queue_dict(spec: QueueSpec) -> dict[str, Any]:
    arguments = spec.queue_arguments or None
    return {
        "name": spec.name,
        "exchange": {"name": spec.exchange, "type": spec.exchange_type, "arguments": None,
                     "durable": spec.durable, "passive": False, "auto_delete": False,
                     "delivery_mode": None, "no_declare": False},
        "routing_key": spec.routing_key, "queue_arguments": arguments,
        "binding_arguments": None, "consumer_arguments": None, "durable": spec.durable,
        "exclusive": False, "auto_delete": spec.auto_delete, "no_ack": False, "alias": None,
        "bindings": [], "no_declare": None, "expires": None, "message_ttl": None,
        "max_length": None, "max_length_bytes": None, "max_priority": spec.max_priority}
