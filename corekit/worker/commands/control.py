"""Control commands: change what a running worker does, with Celery's replies.

Each runs on the control step's thread and changes the consumer and the
pool only through their thread-safe methods (`Consumer.add_queue`,
`Consumer.resize`, `Pool.resize`...).
"""
from __future__ import annotations

import logging
import signal as signals
import time
from typing import Any

from corekit.exceptions import ImproperlyConfigured
from corekit.queues import QueueSpec
from corekit.ratelimit import parse_rate
from corekit.worker.commands.inspect import worker_queues
from corekit.worker.commands.registry import ControlContext, control_command, nok, ok

logger = logging.getLogger("corekit.worker")


def signal_number(name: Any) -> int:
    """``"SIGKILL"``, ``"KILL"``, ``9`` -> 9; an unknown name is SIGTERM."""
    if isinstance(name, int):
        return name
    text = str(name or "SIGTERM").upper()
    try:
        return int(signals.Signals[text if text.startswith("SIG") else "SIG" + text])
    except KeyError:
        logger.warning("Unknown signal %r in a revoke: using SIGTERM", name)
        return int(signals.SIGTERM)


# -- revoking -------------------------------------------------------------------------
@control_command(variadic="task_id", signature="[id1 [id2 [... [idN]]]]")
def revoke(ctx: ControlContext, task_id: Any = (), terminate: bool = False,
           signal: Any = None, **kwargs: Any) -> dict[str, str]:
    """Never run these tasks; with *terminate*, also kill them where they run
    now (on pools that can: prefork, asyncio, eventlet)."""
    ids = [task_id] if isinstance(task_id, str) else list(task_id or [])
    ctx.consumer.revoked.add({"task_id": ids, "at": time.time()})
    if terminate:
        signum = signal_number(signal)
        killed = [i for i in ids if ctx.consumer.terminate(i, signum)]
        return ok(f"terminate: {', '.join(killed)}" if killed else "terminate: tasks unknown")
    logger.info("Tasks flagged as revoked: %s", ", ".join(ids))
    return ok(f"tasks {', '.join(ids)} flagged as revoked")


@control_command(variadic="task_id", args=[("signal", str)],
                 signature="<signal> [id1 [id2 [... [idN]]]]")
def terminate(ctx: ControlContext, signal: Any = None, task_id: Any = (),
              **kwargs: Any) -> dict[str, str]:
    """Revoke these tasks and kill them where they run now."""
    return revoke(ctx, task_id, terminate=True, signal=signal)


@control_command(variadic="headers",
                 signature="[key1=value1 [key2=value2 [... [keyN=valueN]]]]")
def revoke_by_stamped_headers(ctx: ControlContext, headers: Any = None,
                              terminate: bool = False, signal: Any = None,
                              **kwargs: Any) -> dict[str, str]:
    """Never run tasks whose message has all of these headers (a list value
    matches any of its items); with *terminate*, kill those running now."""
    if isinstance(headers, (list, tuple)):
        headers = dict(str(h).split("=", 1) for h in headers)
    headers = dict(headers or {})
    consumer = ctx.consumer
    consumer.revoked.add({"headers": headers, "at": time.time()})
    if not terminate:
        return ok(f"headers {headers} flagged as revoked, but not terminated")
    signum = signal_number(signal)
    killed = [job.id for job in list(consumer.running.values())
              if consumer.revoked.reason(job.id, job.message.headers)
              and consumer.terminate(job.id, signum)]
    if not killed:
        return ok(f"headers {headers} were not terminated")
    return ok(f"headers {headers} revoked: {', '.join(killed)} terminated")


# -- limits ---------------------------------------------------------------------------
@control_command(args=[("task_name", str), ("rate_limit", str)],
                 signature="<task_name> <rate_limit (e.g., 5/s | 5/m | 5/h)>")
def rate_limit(ctx: ControlContext, task_name: str, rate_limit: Any,
               **kwargs: Any) -> dict[str, str]:
    """Change a task type's rate limit on this worker (0 or "" lifts it)."""
    try:
        parse_rate(rate_limit)
    except ValueError as exc:
        return nok(f"Invalid rate limit string: {exc!r}")
    task = ctx.app.tasks.get(task_name)
    if task is None:
        return nok("unknown task")
    consumer = ctx.consumer
    if rate_limit and task.rate_limit_global and (
            "rate_limit" not in consumer.transport.capabilities):
        return nok(f"{task_name} has a global rate limit, which "
                   f"{consumer.transport.scheme}:// cannot keep")
    previous = task.rate_limit
    setattr(task, "rate_limit", rate_limit or None)
    try:
        consumer.live.reset_rate_limit(task_name)
    except ValueError as exc:
        setattr(task, "rate_limit", previous)
        return nok(str(exc))
    if not rate_limit:
        logger.info("Rate limits disabled for tasks of type %s", task_name)
        return ok("rate limit disabled successfully")
    logger.info("New rate limit for tasks of type %s: %s.", task_name, rate_limit)
    return ok("new rate limit set successfully")


@control_command(args=[("task_name", str), ("soft", float), ("hard", float)],
                 signature="<task_name> <soft_secs> [hard_secs]")
def time_limit(ctx: ControlContext, task_name: str | None = None, hard: Any = None,
               soft: Any = None, **kwargs: Any) -> dict[str, str]:
    """Change a task type's time limits on this worker (None lifts one);
    refused when the pool cannot enforce them."""
    task = ctx.app.tasks.get(task_name or "")
    if task is None:
        return nok("unknown task")
    limits = {"time_limit": None if hard is None else float(hard),
              "soft_time_limit": None if soft is None else float(soft)}
    pool = ctx.worker.pool
    previous = {name: getattr(task, name) for name in limits}
    for name, value in limits.items():
        setattr(task, name, value)
    refused = [name for name, value in limits.items() if value and not pool.enforces(task, name)]
    if refused:
        for name, value in previous.items():
            setattr(task, name, value)
        return nok(f"the {pool.name} pool cannot enforce a {' or '.join(refused)} for "
                   f"{task.name}: use a pool that can (a pool's supports names the "
                   f"limits it enforces)")
    logger.info("New time limits for tasks of type %s: soft=%s hard=%s", task_name,
                limits["soft_time_limit"], limits["time_limit"])
    return ok("time limits set successfully")


# -- the pool -------------------------------------------------------------------------
def _resize(ctx: ControlContext, change: int, done: str) -> dict[str, str]:
    pool = ctx.worker.pool
    if pool.autoscaling is not None:
        return nok(f"pool_{'grow' if change > 0 else 'shrink'} is not supported with "
                   f"autoscale. Adjust autoscale range instead.")
    try:
        pool.resize(pool.concurrency + change)
    except (NotImplementedError, ValueError, RuntimeError) as exc:
        return nok(str(exc))
    ctx.consumer.live.resize(pool.concurrency)
    logger.info("Pool resized by remote control: %d slot(s)", pool.concurrency)
    return ok(done)


@control_command(args=[("n", int)], signature="[N=1]")
def pool_grow(ctx: ControlContext, n: int = 1, **kwargs: Any) -> dict[str, str]:
    """Add n slots (threads, processes, green threads) to the pool."""
    return _resize(ctx, int(n), "pool will grow")


@control_command(args=[("n", int)], signature="[N=1]")
def pool_shrink(ctx: ControlContext, n: int = 1, **kwargs: Any) -> dict[str, str]:
    """Take n slots from the pool (busy ones leave after their task)."""
    return _resize(ctx, -int(n), "pool will shrink")


@control_command(args=[("max", int), ("min", int)], signature="[max [min]]")
def autoscale(ctx: ControlContext, max: Any = None, min: Any = None,
              **kwargs: Any) -> dict[str, str]:
    """Keep between min and max pool processes by load (prefork)."""
    pool = ctx.worker.pool
    high, low = pool.autoscaling or (pool.concurrency, pool.concurrency)
    high = high if max is None else int(max)
    low = low if min is None else int(min)
    try:
        pool.autoscale(high, low)
    except (NotImplementedError, ValueError) as exc:
        return nok(str(exc))
    high, low = pool.autoscaling or (high, low)
    ctx.consumer.live.resize(high)
    return ok(f"autoscale now max={high} min={low}")


# -- queues ---------------------------------------------------------------------------
@control_command(args=[("queue", str), ("exchange", str), ("exchange_type", str),
                       ("routing_key", str)],
                 signature="<queue> [exchange [type [routing_key]]]")
def add_consumer(ctx: ControlContext, queue: str, exchange: str | None = None,
                 exchange_type: str | None = None, routing_key: str | None = None,
                 **options: Any) -> dict[str, str]:
    """Start consuming *queue*, declared with this exchange and routing key
    when the worker does not know it yet."""
    known = worker_queues(ctx)
    if queue not in known:
        try:
            spec = QueueSpec(
                queue, exchange=exchange or queue, exchange_type=exchange_type or "direct",
                routing_key=routing_key or queue,
                durable=bool(options.get("queue_durable", options.get("durable", True))),
                auto_delete=bool(options.get("queue_auto_delete",
                                             options.get("auto_delete", False))),
                arguments=dict(options.get("queue_arguments") or {}),
                max_priority=known.max_priority)
        except ImproperlyConfigured as exc:
            return nok(str(exc))
        # a new dict, not an insert: other threads may be routing through the old one
        for queues in {id(q): q for q in (known, ctx.app.queues)}.values():
            if queue not in queues.declared:
                queues.declared = {**queues.declared, queue: spec}
    if not ctx.consumer.live.add_queue(queue):
        return ok(f"already consuming from {queue}")
    logger.info("Started consuming from %s (remote control)", queue)
    return ok(f"add consumer {queue}")


@control_command(args=[("queue", str)], signature="<queue>")
def cancel_consumer(ctx: ControlContext, queue: str, **kwargs: Any) -> dict[str, str]:
    """Stop consuming *queue* (not the last one)."""
    try:
        ctx.consumer.live.cancel_queue(queue)
    except ValueError as exc:
        return nok(str(exc))
    logger.info("Stopped consuming from %s (remote control)", queue)
    return ok(f"no longer consuming from {queue}")


# -- events ---------------------------------------------------------------------------
def _event_dispatcher(ctx: ControlContext) -> Any:
    """The events step's dispatcher, or None when this worker has none."""
    try:
        from corekit.worker.events import EventsStep
    except ImportError:
        return None
    if EventsStep not in ctx.worker.blueprint:
        return None
    return ctx.worker.blueprint[EventsStep].dispatcher


@control_command()
def enable_events(ctx: ControlContext, **kwargs: Any) -> dict[str, str]:
    """Start sending task events."""
    dispatcher = _event_dispatcher(ctx)
    if dispatcher is None:
        return nok("event dispatcher unavailable")
    if dispatcher.enabled:
        return ok("task events already enabled")
    dispatcher.enable()
    logger.info("Events of group {task} enabled by remote.")
    return ok("task events enabled")


@control_command()
def disable_events(ctx: ControlContext, **kwargs: Any) -> dict[str, str]:
    """Stop sending task events."""
    dispatcher = _event_dispatcher(ctx)
    if dispatcher is None:
        return nok("event dispatcher unavailable")
    if not dispatcher.enabled:
        return ok("task events already disabled")
    dispatcher.disable()
    logger.info("Events of group {task} disabled by remote.")
    return ok("task events disabled")


@control_command()
def heartbeat(ctx: ControlContext, **kwargs: Any) -> dict[str, str] | None:
    """Send a worker-heartbeat event now (Celery replies nothing)."""
    dispatcher = _event_dispatcher(ctx)
    if dispatcher is None:
        return nok("event dispatcher unavailable")
    dispatcher.heartbeat()
    return None


# -- the worker -----------------------------------------------------------------------
@control_command()
def shutdown(ctx: ControlContext, msg: str = "Got shutdown from remote",
             **kwargs: Any) -> dict[str, str]:
    """Shut the worker down warmly (running tasks finish), after replying."""
    logger.warning(msg)
    ctx.after_reply.append(ctx.worker.stop)
    return ok("shutting down")
