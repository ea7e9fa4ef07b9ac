"""The remote-control command registry: what a worker answers on ``celery.pidbox``.

A command is a function ``handler(ctx, **arguments)`` that gets a
`ControlContext` (the worker, its consumer, its hostname, the app) and the
request's ``arguments``, and returns the reply value (Celery's shapes:
``{"ok": ...}``, ``{"error": ...}``, a list or a dict).  `inspect_command`
and `control_command` describe one the way Celery's ``Panel`` does (type,
CLI signature, argument types, help), so a command line can list and parse
them.  Built-in commands live in `corekit.worker.commands.inspect` and
`corekit.worker.commands.control`; plugins add theirs through the
``corekit_register_control_commands`` hook.
"""
from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Mapping, Sequence, TypeVar

from corekit.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.worker import Worker
    from corekit.worker.consumer import Consumer

CommandType = Literal["inspect", "control"]
Handler = Callable[..., Any]
F = TypeVar("F", bound=Handler)

#: The attribute a decorated handler carries its `Command` in.
META = "__corekit_command__"


@dataclass(frozen=True)
class Command:
    """One remote-control command and what a command line needs to call it."""

    name: str
    handler: Handler
    #: ``inspect`` reads the worker's state; ``control`` changes it
    type: CommandType = "control"
    #: another name it answers to (Celery's ``dump_conf`` for ``conf``...)
    alias: str | None = None
    #: for help texts: ``"<task_name> <rate_limit (e.g. 5/s)>"``
    signature: str | None = None
    #: positional CLI arguments in order, with the type each converts to
    args: tuple[tuple[str, Callable[[str], Any]], ...] = ()
    #: the argument that collects the remaining CLI words as a list
    variadic: str | None = None
    help: str = ""
    #: how long a client waits for replies by default (seconds)
    default_timeout: float = 1.0


def ok(value: Any) -> dict[str, Any]:
    """A successful reply, as Celery words it."""
    return {"ok": value}


def nok(value: Any) -> dict[str, Any]:
    """A refusal or failure, as Celery words it."""
    return {"error": value}


@dataclass
class ControlContext:
    """What a command handler works on.  Handlers run on the control
    step's own thread: they change the consumer only through its
    thread-safe methods."""

    worker: Worker
    consumer: Consumer
    hostname: str
    app: Corekit
    #: the control step (its clock, start time, job tracker)
    step: Any = None
    #: called after the reply went out (``shutdown`` stops the worker there)
    after_reply: list[Callable[[], None]] = field(default_factory=list)


def _register(type_: CommandType, name: str | None, alias: str | None,
              signature: str | None, args: Sequence[tuple[str, Callable[[str], Any]]],
              variadic: str | None, help: str | None, default_timeout: float
              ) -> Callable[[F], F]:
    def decorate(handler: F) -> F:
        doc = (help or (handler.__doc__ or "").strip().split("\n")[0]).strip()
        setattr(handler, META, Command(
            name=name or handler.__name__, handler=handler, type=type_, alias=alias,
            signature=signature, args=tuple(args), variadic=variadic, help=doc,
            default_timeout=default_timeout))
        return handler

    return decorate


def inspect_command(name: str | None = None, *, alias: str | None = None,
                    signature: str | None = None,
                    args: Sequence[tuple[str, Callable[[str], Any]]] = (),
                    variadic: str | None = None, help: str | None = None,
                    default_timeout: float = 1.0) -> Callable[[F], F]:
    """Describe *handler* as a command that reads the worker's state."""
    return _register("inspect", name, alias, signature, args, variadic, help, default_timeout)


def control_command(name: str | None = None, *, alias: str | None = None,
                    signature: str | None = None,
                    args: Sequence[tuple[str, Callable[[str], Any]]] = (),
                    variadic: str | None = None, help: str | None = None,
                    default_timeout: float = 1.0) -> Callable[[F], F]:
    """Describe *handler* as a command that changes the worker."""
    return _register("control", name, alias, signature, args, variadic, help, default_timeout)


def describe(name: str, handler: Handler) -> Command:
    """The `Command` for *handler* under *name*: from its decorator, or a
    ``control`` command helped by its docstring when it has none."""
    meta: Command | None = getattr(handler, META, None)
    if meta is None:
        doc = (handler.__doc__ or "").strip().split("\n")[0].strip()
        return Command(name=name, handler=handler, help=doc)
    if meta.name != name:
        return Command(**{**meta.__dict__, "name": name, "alias": None})
    return meta


def collect(modules: Iterable[types.ModuleType]) -> dict[str, Command]:
    """Every decorated handler defined in *modules*, by name and alias."""
    found: dict[str, Command] = {}
    for module in modules:
        for value in vars(module).values():
            meta = getattr(value, META, None)
            if isinstance(meta, Command) and value.__module__ == module.__name__:
                found[meta.name] = meta
                if meta.alias:
                    found[meta.alias] = meta
    return found


def merge(builtin: Mapping[str, Command], from_plugins: Mapping[str, Handler]
          ) -> dict[str, Command]:
    """Built-in commands plus those plugins supply; a plugin may not
    replace a built-in one."""
    merged = dict(builtin)
    for name, handler in from_plugins.items():
        if name in builtin:
            raise ImproperlyConfigured(
                f"a plugin's remote-control command {name!r} has the name of a built-in "
                f"one: rename it")
        if not callable(handler):
            raise ImproperlyConfigured(
                f"remote-control command {name!r} from a plugin is not callable: "
                f"{handler!r}")
        merged[name] = describe(name, handler)
    return merged
