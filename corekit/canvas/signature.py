"""`Signature`: one task call described as Celery's wire-form dict, and the
functions that make one (`signature`, `maybe_signature`)."""
from __future__ import annotations

import inspect
import logging
import uuid
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

from corekit.exceptions import MalformedSignature
from corekit.result import AsyncResult
from corekit.signature_check import check_signature, options_problem

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.result import GroupResult
    from corekit.messages import Message

logger = logging.getLogger("corekit.canvas")

#: options that are the canvas's own business, never the user's
_ROUTED_TO_LAST = ("task_id", "group_id", "group_index", "chord", "link")
#: options `apply_async` takes that are not message options
_PUBLISH_OPTIONS = ("retry", "retry_policy")


def _copy(value: Any) -> Any:
    """A deep copy of plain signature data (dicts, lists, tuples)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy(v) for v in value]
    return value


class Signature(dict):  # type: ignore[type-arg]
    """One task call, described: task name, arguments and options.

    ``sig.delay(*args)`` / ``sig.apply_async(args, kwargs, **options)``
    send it; extra arguments are *prepended* to its own (a partial), extra
    keyword arguments and options are merged over its own, unless it is
    immutable (then extra arguments are ignored).  ``sig(*args)`` calls the
    task function here, as ``task(*args)`` does.
    """

    #: subtask_type -> class, for rebuilding signatures from dicts
    TYPES: ClassVar[dict[str | None, type[Signature]]] = {}
    TYPE: ClassVar[str | None] = None

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "TYPE" in cls.__dict__:  # a workflow type of its own, not a shared base
            Signature.TYPES[cls.TYPE] = cls

    def __init__(self, task: Any = None, args: Sequence[Any] | None = None,
                 kwargs: Mapping[str, Any] | None = None,
                 options: Mapping[str, Any] | None = None, type: Any = None,
                 subtask_type: str | None = None, immutable: bool = False,
                 app: Corekit | None = None, **ex: Any) -> None:
        if isinstance(task, dict):  # rebuilding from the wire form
            _check_fields(task)
            super().__init__(task)
            self.setdefault("args", [])
            self.setdefault("kwargs", {})
            self.setdefault("options", {})
            self.setdefault("subtask_type", None)
            self.setdefault("immutable", False)
            self.setdefault("chord_size", None)
            self["args"] = list(self["args"] or ())
            self["kwargs"] = dict(self["kwargs"] or {})
            self["options"] = dict(self["options"] or {})
            self._app = app
            return
        task = type if task is None else task
        name = getattr(task, "name", task)
        super().__init__(task=name, args=list(args or ()), kwargs=dict(kwargs or {}),
                         options={**(options or {}), **ex},
                         subtask_type=subtask_type if subtask_type is not None else self.TYPE,
                         immutable=bool(immutable), chord_size=None)
        task_app = getattr(task, "app", None)
        self._app = app or task_app

    # -- the dict's fields as attributes -------------------------------------
    @property
    def task(self) -> str:
        return self["task"]

    name = task

    @property
    def args(self) -> list[Any]:
        return self["args"]

    @property
    def kwargs(self) -> dict[str, Any]:
        return self["kwargs"]

    @property
    def options(self) -> dict[str, Any]:
        return self["options"]

    @property
    def subtask_type(self) -> str | None:
        return self["subtask_type"]

    @property
    def immutable(self) -> bool:
        return bool(self["immutable"])

    @property
    def id(self) -> str | None:
        """The task id, once frozen (or set with ``task_id=``)."""
        return self.options.get("task_id")

    @property
    def app(self) -> Corekit:
        if self._app is None:
            from corekit.app import current_app

            self._app = current_app()
        return self._app

    @property
    def type(self) -> Any:
        """The registered task this signature calls."""
        return self.app.tasks[self.task]

    # -- building -------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], app: Corekit | None = None) -> Signature:
        kind = Signature.TYPES.get(data.get("subtask_type"), Signature)
        if kind is not cls and cls is Signature:
            return kind.from_dict(data, app)
        return cls(dict(data), app=app)

    def clone(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              **options: Any) -> Signature:
        """A copy (nested signatures copied too) with *args*, *kwargs* and
        *options* merged in."""
        data = _copy(dict(self))
        clone = type(self).from_dict(data, app=self._app)
        if args or kwargs or options:
            clone["args"], clone["kwargs"], clone["options"] = clone._merge(args, kwargs, options)
        return clone

    __copy__ = clone

    def replace(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
                options: Mapping[str, Any] | None = None) -> Signature:
        """A copy with args, kwargs or options replaced (not merged)."""
        clone = self.clone()
        if args is not None:
            clone["args"] = list(args)
        if kwargs is not None:
            clone["kwargs"] = dict(kwargs)
        if options is not None:
            clone["options"] = dict(options)
        return clone

    def _merge(self, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None,
               options: Mapping[str, Any] | None
               ) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
        opts = {**self.options, **(options or {})}
        if self.immutable:
            return list(self.args), dict(self.kwargs), opts
        return ([*(args or ()), *self.args], {**self.kwargs, **(kwargs or {})}, opts)

    def set(self, immutable: bool | None = None, **options: Any) -> Signature:
        """Update options (``queue=``, ``countdown=``...) in place; returns self."""
        if immutable is not None:
            self["immutable"] = bool(immutable)
        self.options.update(options)
        return self

    def set_immutable(self, immutable: bool) -> None:
        self["immutable"] = bool(immutable)

    def link(self, callback: Signature) -> Signature:
        """Run *callback* with this task's result when it succeeds."""
        self.options.setdefault("link", []).append(callback)
        return callback

    def link_error(self, errback: Signature) -> Signature:
        """Run *errback* when this task fails (see `corekit.workflow`)."""
        self.options.setdefault("link_error", []).append(errback)
        return errback

    def on_error(self, errback: Signature) -> Signature:
        self.link_error(errback)
        return self

    def __or__(self, other: Any) -> Signature:
        if isinstance(other, Signature):
            from corekit.canvas.chain import chain

            return chain(self, other, app=self._app)
        return NotImplemented

    def __ior__(self, other: Any) -> Signature:
        return self.__or__(other)

    # -- calling ----------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the task function here, with the signature's arguments."""
        a, kw, _ = self._merge(args, kwargs, None)
        return self.type(*a, **kw)

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def apply_async(self, args: Sequence[Any] | None = None,
                    kwargs: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Send it (a workflow: every message of it, in one batch); returns
        its result: an `AsyncResult`, or a `GroupResult` for a group."""
        app = self.app
        if app.conf.task_always_eager:
            for key in _PUBLISH_OPTIONS:
                options.pop(key, None)
            return self.apply(args, kwargs, **options)
        publish = {key: options.pop(key) for key in _PUBLISH_OPTIONS if key in options}
        messages, result = self.prepare(args, kwargs, options)
        app.publish_tasks(messages, **publish)
        from corekit.producer import add_to_parent

        add_to_parent(result)
        return result

    def apply(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              **options: Any) -> Any:
        """Run it here and now (eagerly); returns an `EagerResult`."""
        a, kw, opts = self._merge(args, kwargs, options)
        return self.type.apply(a, kw, **_eager_options(opts))

    def freeze(self, _id: str | None = None, group_id: str | None = None,
               chord: Any = None, root_id: str | None = None, parent_id: str | None = None,
               group_index: int | None = None) -> Any:
        """Give the call its id now (keeping one it has, unless *_id*) and
        return the result it will have."""
        opts = self.options
        if _id is not None or "task_id" not in opts:
            opts["task_id"] = _id or str(uuid.uuid4())
        for key, value in (("group_id", group_id), ("chord", chord), ("root_id", root_id),
                           ("parent_id", parent_id), ("group_index", group_index)):
            if value is not None:
                opts[key] = value
        return AsyncResult(opts["task_id"], app=self._app)

    def prepare(self, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None,
                options: Mapping[str, Any]) -> tuple[list[Message], Any]:
        """The messages to publish for this call, and its result."""
        a, kw, opts = self._merge(args, kwargs, options)
        problem = options_problem(opts, f"{self.task}'s options", canvas=False)
        if problem:
            raise MalformedSignature(f"not a signature: {problem}")
        app = self.app
        task = app.tasks.get(self.task)
        if task is not None:
            if task.typing:
                task.check_arguments(a, kw)
            opts = task.send_options(opts)
        opts.setdefault("task_id", opts.get("task_id") or str(uuid.uuid4()))
        for key in _PUBLISH_OPTIONS:
            opts.pop(key, None)
        message = app.prepare_task(self.task, a, kw, **_message_options(opts))
        return [message], AsyncResult(opts["task_id"], app=app)

    # -- presentation --------------------------------------------------------------
    def __repr__(self) -> str:
        args = [repr(a) for a in self.args]
        args += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{'%' if self.immutable else ''}{self.task}({', '.join(args)})"

    def __reduce__(self) -> Any:
        return (signature, (dict(self),))

    def __deepcopy__(self, memo: Any) -> Signature:
        return self.clone()


_MESSAGE_OPTION_NAMES: frozenset[str] | None = None


def _message_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options `corekit.producer.prepare_task` takes; others (a Celery
    client's extras) are dropped with a debug log."""
    global _MESSAGE_OPTION_NAMES
    if _MESSAGE_OPTION_NAMES is None:
        from corekit.producer import prepare_task

        params = inspect.signature(prepare_task).parameters
        _MESSAGE_OPTION_NAMES = frozenset(
            p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY)
    unknown = [key for key in options if key not in _MESSAGE_OPTION_NAMES]
    if unknown:
        logger.debug("signature options ignored: %s", ", ".join(sorted(unknown)))
        options = {k: v for k, v in options.items() if k in _MESSAGE_OPTION_NAMES}
    return options


def _eager_options(options: dict[str, Any]) -> dict[str, Any]:
    keep = ("task_id", "link", "link_error", "chain", "chord", "group_id", "group_index")
    return {k: v for k, v in options.items() if k in keep}


def signature(varies: Any, *args: Any, app: Corekit | None = None, **kwargs: Any) -> Signature:
    """A signature from a task name (``signature('tasks.add', args=(2, 2),
    countdown=10)``), a task, or a signature's dict form."""
    if isinstance(varies, dict):
        if isinstance(varies, Signature) and app is None:
            return varies.clone()
        if not isinstance(varies, Signature):
            check_signature(varies, "signature")
        return Signature.from_dict(varies, app=app)
    return Signature(varies, *args, app=app, **kwargs)


subtask = signature


def maybe_signature(value: Any, app: Corekit | None = None) -> Signature | None:
    if value is None:
        return None
    if isinstance(value, Signature):
        if app is not None and value._app is None:
            value._app = app
        return value
    check_signature(value, "signature")  # a plain dict, or something else
    return Signature.from_dict(value, app=app)


def _check_fields(data: Mapping[str, Any]) -> None:
    """The fields every signature's dict needs, of the right types (the
    nested ones are checked when published: `corekit.signature_check`)."""
    task = data.get("task")
    if not isinstance(task, str) or not task:
        raise MalformedSignature(f"not a signature: a signature needs a task name (a "
                                 f"non-empty string), not {task!r:.60}: {data!r:.120}")
    for name, types, what in (("args", (list, tuple), "a list"), ("kwargs", dict, "a dict"),
                              ("options", dict, "a dict")):
        value = data.get(name)
        if value is not None and not isinstance(value, types):
            raise MalformedSignature(f"not a signature: {task}'s {name} must be {what}, "
                                     f"not {type(value).__name__} {value!r:.60}")
