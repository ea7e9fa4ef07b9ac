"""``task_queues``: the queues an app knows, with their exchanges and
routing keys, as Celery users declare them.

Entries of ``task_queues`` may be kombu ``Queue`` objects (the form in
Celery's documentation), `QueueSpec` objects, dicts with the same fields,
or a mapping ``{name: {"exchange": ..., "routing_key": ...}}``.  Without
``task_queues`` the app knows one queue, ``task_default_queue``, on the
exchange ``task_default_exchange`` (default: the queue's name).

A queue that is not declared is created on demand when
``task_create_missing_queues`` is on (the default): exchange of the same
name, ``task_default_exchange_type``, routing key = the queue's name.

AMQP routes by exchange and routing key on the broker.  Transports without
exchanges (SQLite, Redis, memory) use `Queues.route_to` to find the queue an
exchange and routing key lead to, with direct, topic and fanout matching.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

from corekit.exceptions import ImproperlyConfigured

EXCHANGE_TYPES = ("direct", "topic", "fanout", "headers")


class QueueNotFound(ImproperlyConfigured):
    """A queue that is not declared, with ``task_create_missing_queues`` off."""


@dataclass(frozen=True)
class QueueSpec:
    """One queue and the exchange binding that feeds it."""

    name: str
    exchange: str = ""
    exchange_type: str = "direct"
    routing_key: str = ""
    durable: bool = True
    auto_delete: bool = False
    arguments: Mapping[str, Any] = field(default_factory=dict)
    max_priority: int | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ImproperlyConfigured("task_queues: a queue needs a name")
        if self.exchange_type not in EXCHANGE_TYPES:
            raise ImproperlyConfigured(
                f"task_queues: queue {self.name!r} has exchange type {self.exchange_type!r}; "
                f"expected one of {', '.join(EXCHANGE_TYPES)}")

    @property
    def queue_arguments(self) -> dict[str, Any]:
        """Arguments to declare the queue with (``x-max-priority`` included)."""
        args = dict(self.arguments)
        if self.max_priority is not None:
            args.setdefault("x-max-priority", int(self.max_priority))
        return args

    def matches(self, exchange: str, routing_key: str) -> bool:
        """Whether a message sent to *exchange* with *routing_key* lands here."""
        if exchange != self.exchange:
            return False
        if self.exchange_type == "fanout":
            return True
        if self.exchange_type == "topic":
            return topic_matches(self.routing_key, routing_key)
        return routing_key == self.routing_key


def topic_matches(binding: str, routing_key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more."""
    return _match_words(binding.split("."), routing_key.split("."))


def _match_words(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match_words(rest, words[i:]) for i in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _match_words(rest, words[1:])


def _from_kombu(queue: Any, default_max_priority: int | None) -> QueueSpec:
    exchange = getattr(queue, "exchange", None)
    arguments = dict(getattr(queue, "queue_arguments", None) or {})
    max_priority = getattr(queue, "max_priority", None)
    if max_priority is None and "x-max-priority" not in arguments:
        max_priority = default_max_priority
    return QueueSpec(name=queue.name, exchange=getattr(exchange, "name", "") or "",
                     exchange_type=getattr(exchange, "type", "direct") or "direct",
                     routing_key=queue.routing_key or "",
                     durable=bool(getattr(queue, "durable", True)),
                     auto_delete=bool(getattr(queue, "auto_delete", False)),
                     arguments=arguments, max_priority=max_priority)


def _from_dict(name: str, spec: Mapping[str, Any], default_max_priority: int | None
               ) -> QueueSpec:
    known = {"name", "exchange", "exchange_type", "routing_key", "durable", "auto_delete",
             "arguments", "queue_arguments", "max_priority"}
    unknown = set(spec) - known
    if unknown:
        raise ImproperlyConfigured(f"task_queues: queue {name!r} has unknown field(s) "
                                   f"{', '.join(sorted(unknown))}")
    exchange = spec.get("exchange", name)
    exchange_type = spec.get("exchange_type", "direct")
    if not isinstance(exchange, str):  # a kombu Exchange in a dict entry
        exchange_type = getattr(exchange, "type", exchange_type)
        exchange = getattr(exchange, "name", "")
    arguments = dict(spec.get("arguments") or spec.get("queue_arguments") or {})
    max_priority = spec.get("max_priority")
    if max_priority is None and "x-max-priority" not in arguments:
        max_priority = default_max_priority
    return QueueSpec(name=name, exchange=exchange, exchange_type=exchange_type,
                     routing_key=spec.get("routing_key", name),
                     durable=spec.get("durable", True), auto_delete=spec.get("auto_delete", False),
                     arguments=arguments, max_priority=max_priority)


def _entries(task_queues: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(task_queues, Mapping):
        yield from task_queues.items()
        return
    if isinstance(task_queues, (str, bytes)) or not isinstance(task_queues, Iterable):
        raise ImproperlyConfigured("task_queues must be a list of queues or a mapping, "
                                   f"not {type(task_queues).__name__}")
    for entry in task_queues:
        if isinstance(entry, QueueSpec):
            yield entry.name, entry
        elif isinstance(entry, Mapping):
            if "name" not in entry:
                raise ImproperlyConfigured(f"task_queues: entry {entry!r} has no name")
            yield entry["name"], entry
        elif hasattr(entry, "name") and hasattr(entry, "routing_key"):
            yield entry.name, entry
        else:
            raise ImproperlyConfigured(f"task_queues: cannot read a queue from {entry!r}")


class Queues:
    """The app's queues, from its configuration (see the module docstring)."""

    def __init__(self, conf: Mapping[str, Any]) -> None:
        self.default_queue = conf["task_default_queue"]
        self.default_exchange_type = conf["task_default_exchange_type"]
        self.create_missing = bool(conf["task_create_missing_queues"])
        self.max_priority = conf["task_queue_max_priority"]
        self.declared: dict[str, QueueSpec] = {}
        self._made: dict[str, QueueSpec] = {}  # queues created on demand, made once
        if conf["task_queues"] is None:
            self.declared[self.default_queue] = QueueSpec(
                self.default_queue, exchange=conf["task_default_exchange"] or self.default_queue,
                exchange_type=self.default_exchange_type,
                routing_key=conf["task_default_routing_key"] or self.default_queue,
                max_priority=self.max_priority)
        else:
            for name, entry in _entries(conf["task_queues"]):
                self.declared[name] = self._spec(name, entry)

    def _spec(self, name: str, entry: Any) -> QueueSpec:
        if isinstance(entry, QueueSpec):
            return entry
        if isinstance(entry, Mapping):
            return _from_dict(name, entry, self.max_priority)
        return _from_kombu(entry, self.max_priority)

    def __contains__(self, name: object) -> bool:
        return name in self.declared

    def names(self) -> list[str]:
        """The declared queues, in declaration order (what a worker consumes
        when not told which)."""
        return list(self.declared)

    def get(self, name: str) -> QueueSpec:
        """The declared queue, or a new one when missing queues may be created."""
        spec = self.declared.get(name) or self._made.get(name)
        if spec is not None:
            return spec
        if not self.create_missing:
            raise QueueNotFound(f"queue {name!r} is not in task_queues and "
                                f"task_create_missing_queues is off")
        spec = self._made[name] = QueueSpec(
            name, exchange=name, exchange_type=self.default_exchange_type, routing_key=name,
            max_priority=self.max_priority)
        return spec

    def route_to(self, exchange: str, routing_key: str) -> QueueSpec | None:
        """The first declared queue that *exchange* and *routing_key* lead to."""
        for spec in self.declared.values():
            if spec.matches(exchange, routing_key):
                return spec
        return None
