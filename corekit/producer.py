"""The producer: how a task call becomes a published message.

`prepare_task` builds the message (ids, ETA and expiry, the body with its
workflow parts, serialized and compressed), after `route` has asked
``task_routes`` where it goes; `publish_tasks` sends a batch in one broker
round trip with the publish signals around it; `publish` retries a failing
broker on a new connection as ``task_publish_retry_policy`` says.

`Corekit.send_task`, `prepare_task`, `publish_tasks` and `publish` are the
public face of these functions; the producer connection itself stays with
the app (`Corekit.producer`), which owns it and its lock.
"""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from corekit import signals
from corekit.exceptions import ImproperlyConfigured, MalformedSignature, PublishError
from corekit.messages import build_message, countdown_to_eta, task_body, task_headers, to_epoch
from corekit.request import current_request
from corekit.result import AsyncResult
from corekit.transport import mask_url

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.messages import Message


def send_task(app: Corekit, name: str, args: Sequence[Any] | None,
              kwargs: Mapping[str, Any] | None, retry: bool | None,
              retry_policy: Mapping[str, Any] | None, options: dict[str, Any]
              ) -> AsyncResult[Any]:
    """`Corekit.send_task`: prepare, publish, and count the result among
    the children of the task running here."""

    message = prepare_task(app, name, args, kwargs, **options)
    publish_tasks(app, [message], retry=retry, retry_policy=retry_policy)
    result: AsyncResult[Any] = AsyncResult(message.headers["id"], app=app)
    add_to_parent(result)
    return result


def prepare_task(app: Corekit, name: str, args: Sequence[Any] | None = None,
                 kwargs: Mapping[str, Any] | None = None, *, task_id: str | None = None,
                 countdown: float | None = None, eta: datetime | float | None = None,
                 expires: float | datetime | None = None, queue: str | None = None,
                 serializer: str | None = None, compression: str | None = None,
                 priority: int | None = None, routing_key: str | None = None,
                 exchange: str | None = None, retries: int = 0,
                 time_limit: float | None = None, soft_time_limit: float | None = None,
                 ignore_result: bool | None = None, reply_to: str | None = None,
                 root_id: str | None = None, parent_id: str | None = None,
                 group_id: str | None = None, group_index: int | None = None,
                 shadow: str | None = None, headers: Mapping[str, Any] | None = None,
                 link: Any = None, link_error: Any = None, chain: Any = None,
                 chord: Any = None, **unknown: Any) -> Message:
    """The message `send_task` would publish, not yet published (a group
    publishes all of its messages at once with `publish_tasks`)."""
    if unknown:
        raise TypeError(f"send_task() got unknown option(s): {', '.join(sorted(unknown))}")
    if not isinstance(name, str) or not name:
        raise MalformedSignature(f"not a signature: a task name must be a non-empty "
                                 f"string, not {name!r:.60}")
    if link is not None or link_error is not None or chain or chord:
        check_canvas_options(link=link, link_error=link_error, chain=chain, chord=chord)
    app.finalize()
    plugins = app.plugins
    if not plugins.signal_receivers_connected:
        plugins.connect_signal_receivers()
    conf = app.conf
    task_id = task_id or str(uuid.uuid4())
    args, kwargs = list(args or ()), dict(kwargs or {})
    parent = current_request()
    if parent is not None and parent.id and not parent.is_eager:
        root_id = root_id or parent.root_id
        parent_id = parent_id or parent.id
    if queue is None:
        queue, routing_key, exchange, priority = route(
            app, name, args, kwargs, routing_key, exchange, priority)
    queue = queue or conf.task_default_queue
    if exchange is None:
        spec = app.queues.get(queue)
        exchange, routing_key = spec.exchange, routing_key or spec.routing_key
    eta_at = countdown_to_eta(countdown, eta)
    expires_at = expires_to_epoch(expires)
    if priority is None:
        priority = conf.task_default_priority or 0
    hdrs = task_headers(name, task_id, args, kwargs, eta=eta_at, expires=expires_at,
                        retries=retries, time_limit=time_limit,
                        soft_time_limit=soft_time_limit, root_id=root_id,
                        parent_id=parent_id, group_id=group_id, group_index=group_index,
                        shadow=shadow, ignore_result=bool(ignore_result), extra=headers)
    body, ctype, cenc, ztype = app.codecs.encode(
        task_body(args, kwargs, callbacks=signature_list(link),
                  errbacks=signature_list(link_error), chain=chain or None,
                  chord=chord or None),
        serializer or conf.task_serializer, compression or conf.task_compression)
    if reply_to is None and not ignore_result:  # rpc://: the client's reply queue
        reply_to = (app._backend or app.backend).reply_to
    return build_message(hdrs, body, ctype, cenc, ztype, queue=queue, priority=priority,
                         exchange=exchange or "", routing_key=routing_key,
                         reply_to=reply_to, eta=eta_at)


def route(app: Corekit, name: str, args: list[Any], kwargs: dict[str, Any],
          routing_key: str | None, exchange: str | None, priority: int | None
          ) -> tuple[str | None, str | None, str | None, int | None]:
    """Ask ``task_routes`` where a call without ``queue=`` goes; explicit
    options keep precedence over what the router says."""
    found = app.router.route(name, args, kwargs, {
        "routing_key": routing_key, "exchange": exchange, "priority": priority},
        task=app._registry.get(name))
    queue = found.get("queue")
    routing_key = routing_key or found.get("routing_key")
    exchange = exchange if exchange is not None else found.get("exchange")
    if priority is None:
        priority = found.get("priority")
    if queue is None and routing_key and not exchange:
        queue = routing_key  # the default exchange: the routing key names the queue
    elif queue is None and exchange:
        spec = app.queues.route_to(exchange, routing_key or "")
        queue = spec.name if spec is not None else None
    return queue, routing_key, exchange, priority


def publish_tasks(app: Corekit, messages: Sequence[Message], retry: bool | None = None,
                  retry_policy: Mapping[str, Any] | None = None) -> None:
    """Publish task messages made by `prepare_task` in one batch (one
    broker round trip where the transport allows), with the publish
    signals around each."""
    if not messages:
        return
    before_publish(messages, retry_policy)
    publish(app, messages, retry=retry, retry_policy=retry_policy)
    after_publish(app, messages)


def before_publish(messages: Sequence[Message],
                   retry_policy: Mapping[str, Any] | None = None) -> None:
    """``before_task_publish`` for each message about to be published (its
    receivers may change headers).  For a publisher that puts messages on
    the broker its own way (the beat's one-transaction fire)."""
    if signals.before_task_publish.receivers:
        for m in messages:
            signals.before_task_publish.send(
                m.headers["task"], body=m.body, exchange=m.exchange,
                routing_key=m.routing_key, headers=m.headers, properties=m.properties,
                declare=[m.queue], retry_policy=retry_policy)


def after_publish(app: Corekit, messages: Sequence[Message]) -> None:
    """``task-sent`` events (``task_send_sent_event``) and ``after_task_publish``
    for messages just published."""
    if app.conf.task_send_sent_event:
        from corekit.events.dispatcher import send_task_sent

        send_task_sent(app, messages)
    if signals.after_task_publish.receivers:
        for m in messages:
            signals.after_task_publish.send(
                m.headers["task"], body=m.body, exchange=m.exchange,
                routing_key=m.routing_key, headers=m.headers)


def publish(app: Corekit, messages: Sequence[Message], retry: bool | None = None,
            retry_policy: Mapping[str, Any] | None = None) -> None:
    """Publish with the app's producer, retrying a broker error as the
    policy says, each time on a new connection; `PublishError` (naming the
    broker, password masked) once the attempts are spent."""
    conf = app.conf
    if retry is None:
        retry = conf.task_publish_retry
    policy = {**conf.task_publish_retry_policy, **(retry_policy or {})}
    attempts = 1 + (int(policy["max_retries"]) if retry else 0)
    interval = float(policy["interval_start"])
    for attempt in range(1, attempts + 1):
        try:
            app.producer.publish(messages)
            return
        except Exception as exc:  # any broker error; the message is not sent
            app.close_producer()
            if attempt == attempts:
                error = PublishError(
                    f"could not publish {len(messages)} message(s) to "
                    f"{mask_url(conf.broker)} after {attempt} attempt(s): {exc!r}")
                publish_failed(app, messages, error)
                raise error from exc
            time.sleep(interval)
            interval = min(interval + float(policy["interval_step"]),
                           float(policy["interval_max"]))


def publish_failed(app: Corekit, messages: Sequence[Message], error: PublishError) -> None:
    """Tell the plugins that implement ``corekit_publish_failed``; one that
    raises is logged, and the sender still gets *error*."""
    plugins = app.plugins
    if plugins.implements("corekit_publish_failed"):
        try:
            plugins.hook.corekit_publish_failed(app=app, messages=messages, exc=error)
        except Exception:
            import logging

            logging.getLogger("corekit.producer").exception(
                "a corekit_publish_failed implementation raised")


def add_to_parent(result: Any) -> None:
    """Count *result* among the children of the task running here (its meta
    lists them, and ``collect()`` walks them)."""
    parent = current_request()
    if (parent is not None and parent.id and not parent.called_directly
            and getattr(result, "id", None) != parent.id):  # a retry is not a child
        parent.children.append(result)


def check_canvas_options(**options: Any) -> None:
    """`MalformedSignature` for a ``link``, ``link_error``, ``chain`` or
    ``chord`` that is not made of signatures, before anything is sent."""
    from corekit.signature_check import check_option

    for name, value in options.items():
        if value:
            check_option(name, value)


def signature_list(value: Any) -> list[dict[str, Any]] | None:
    """``link``/``link_error`` as a list of plain signature dicts (or None)."""
    if not value:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    return [dict(item) for item in items]


def expires_to_epoch(expires: float | datetime | None) -> float | None:
    """``expires`` (seconds from now, or a datetime; naive means UTC) as epoch seconds."""
    if expires is None:
        return None
    if isinstance(expires, (int, float)):
        return (datetime.now(timezone.utc) + timedelta(seconds=expires)).timestamp()
    return to_epoch(expires)


def on_commit(app: Corekit, callback: Callable[[], Any]) -> None:
    """Run *callback* once the current database transaction commits, through
    the plugin that knows the transaction (``corekit_on_commit``)."""
    plugins = app.plugins
    if plugins.implements("corekit_on_commit") and plugins.hook.corekit_on_commit(
            app=app, callback=callback):
        return
    raise ImproperlyConfigured(
        "delay_on_commit and apply_async_on_commit send the task when the database "
        "transaction commits, and no plugin knows of one here: they need Django set up "
        "(DJANGO_SETTINGS_MODULE, with corekit.contrib.django installed); use delay() "
        "or apply_async() otherwise")
