"""Signatures and workflows: ``add.s(2, 2)``, `chain`, `group`, `chord`,
`chunks`, ``add.map``/``add.starmap``.

A `Signature` is a dict in Celery's wire form ``{task, args, kwargs,
options, subtask_type, immutable, chord_size}`` (DESIGN.md §3), so it
travels inside task messages as it is: ``link``/``link_error`` callbacks,
the rest of a chain, a chord's body.  The workflow types are signatures too
(``subtask_type`` chain, group, chord, chunks, xmap, xstarmap) and nest in
any way.

Publishing a workflow first *prepares* it: every task gets its id up front
(so the caller's result objects are right from the start) and every message
is built; then all messages go to the broker in one batch.  The worker does
the rest (`corekit.workflow`): it sends the next task of a chain and the
callbacks when a task succeeds, calls the errbacks when it fails, and joins
a chord with a counter in the result backend, never with a polling task.

Past DESIGN's ~400 lines: `Signature` and the workflow types share the
preparation helpers and call each other (a chord prepares a group, a chain
a chord...), so they were kept in one module; splitting it into a package
(signature, chain and group, chord, chunks and map) is part of issue 13's
smaller rooms.
"""
from __future__ import annotations

import inspect
import itertools
import logging
import uuid
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Iterator, Mapping, Sequence

from corekit.exceptions import MalformedSignature
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
        from corekit.result import AsyncResult

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
            opts = task.send_options(opts)
        opts.setdefault("task_id", opts.get("task_id") or str(uuid.uuid4()))
        for key in _PUBLISH_OPTIONS:
            opts.pop(key, None)
        message = app.prepare_task(self.task, a, kw, **_message_options(opts))
        from corekit.result import AsyncResult

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


def _flatten_args(tasks: tuple[Any, ...]) -> list[Any]:
    """``group(a, b)``, ``group([a, b])`` and ``group(x for x in ...)``."""
    if len(tasks) == 1 and not isinstance(tasks[0], dict):
        if isinstance(tasks[0], (str, bytes)) or not hasattr(tasks[0], "__iter__"):
            raise MalformedSignature(f"not a signature: expected signatures or an iterable "
                                     f"of them, not {type(tasks[0]).__name__} {tasks[0]!r:.60}")
        return list(tasks[0])
    return list(tasks)


def _wire_form(value: Any) -> bool:
    """A signature's plain dict (from a message), not a Signature or a list."""
    return isinstance(value, dict) and not isinstance(value, Signature) and "task" in value


class _TaskList(Signature):
    """What `chain` and `group` share: a list of signatures under
    ``kwargs["tasks"]``, built from signatures (nested ones of the same
    kind without options are taken apart) or from the wire form."""

    BUILTIN: ClassVar[str] = ""

    def __init__(self, *tasks: Any, app: Corekit | None = None, **options: Any) -> None:
        if len(tasks) == 1 and _wire_form(tasks[0]):
            super().__init__(tasks[0], app=app)
            self.kwargs["tasks"] = [maybe_signature(t, app) for t in self.kwargs["tasks"]]
            return
        members: list[Signature] = []
        for t in _flatten_args(tasks):
            sig = maybe_signature(t, app)
            assert sig is not None
            if self._absorbs(sig) and not sig.options:
                members.extend(sig.tasks)  # type: ignore[attr-defined]
            else:
                members.append(sig)
        app = app or next((m._app for m in members if m._app is not None), None)
        super().__init__(self.BUILTIN, (), {"tasks": members}, options, app=app)

    def _absorbs(self, sig: Signature) -> bool:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], app: Corekit | None = None) -> Signature:
        return cls(dict(data), app=app)

    @property
    def tasks(self) -> list[Signature]:
        return self.kwargs["tasks"]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)


class chain(_TaskList):  # noqa: N801 - Celery's name
    """Tasks run one after another, each getting the previous one's result:
    ``chain(add.s(2, 2), add.s(4))`` or ``add.s(2, 2) | add.s(4)``.  Its
    result is the last task's, with ``.parent`` leading back."""

    TYPE = "chain"
    BUILTIN = "celery.chain"

    def _absorbs(self, sig: Signature) -> bool:
        return isinstance(sig, chain)

    def __repr__(self) -> str:
        return " | ".join(repr(t) for t in self.tasks) if self.tasks else "chain()"

    def link(self, callback: Signature) -> Signature:
        return self.tasks[-1].link(callback) if self.tasks else super().link(callback)

    def link_error(self, errback: Signature) -> Signature:
        for task in self.tasks:
            task.link_error(errback)
        return errback

    def steps(self) -> list[Signature]:
        """The tasks, copied, with a group followed by anything turned into
        a chord (the group's results are what the next step gets)."""
        steps = [t.clone() for t in self.tasks]
        out: list[Signature] = []
        for step in steps:
            if out and isinstance(out[-1], group) and not isinstance(out[-1], chord):
                out[-1] = chord(out[-1], step, app=self._app)
            else:
                out.append(step)
        return out

    def _split(self, options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Options for the first step and for the last (the chain's result)."""
        first = {k: v for k, v in options.items() if k not in _ROUTED_TO_LAST}
        last = {k: v for k, v in options.items() if k in _ROUTED_TO_LAST}
        return first, last

    def freeze(self, _id: str | None = None, group_id: str | None = None, chord: Any = None,
               root_id: str | None = None, parent_id: str | None = None,
               group_index: int | None = None) -> Any:
        steps = self.steps()
        self.kwargs["tasks"] = steps
        results = self._freeze_steps(steps, {"task_id": _id, "group_id": group_id,
                                             "chord": chord, "group_index": group_index})
        return results[-1]

    def _freeze_steps(self, steps: list[Signature], last: Mapping[str, Any]) -> list[Any]:
        results = []
        for i, step in enumerate(steps):
            if i == len(steps) - 1:
                res = step.freeze(last.get("task_id"), group_id=last.get("group_id"),
                                  chord=last.get("chord"), group_index=last.get("group_index"))
                for cb in last.get("link") or ():
                    step.link(cb)
            else:
                res = step.freeze()
            if results and getattr(res, "parent", None) is None:
                res.parent = results[-1]
            results.append(res)
        return results

    def prepare(self, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None,
                options: Mapping[str, Any]) -> tuple[list[Message], Any]:
        options = {**self.options, **options}
        rest = [maybe_signature(t, self._app) for t in reversed(options.pop("chain", None) or [])]
        steps = self.steps() + [t for t in rest if t is not None]
        if not steps:
            raise ValueError("an empty chain has nothing to run")
        first_opts, last_opts = self._split(options)
        if "link" in last_opts and not isinstance(last_opts["link"], (list, tuple)):
            last_opts["link"] = [last_opts["link"]]
        results = self._freeze_steps(steps, last_opts)
        if "link_error" in first_opts:
            errbacks = first_opts.pop("link_error")
            for step in steps:
                for eb in errbacks if isinstance(errbacks, (list, tuple)) else [errbacks]:
                    step.link_error(eb)
        later = [dict(step) for step in reversed(steps[1:])]
        if later:
            first_opts["chain"] = later
        messages, _ = steps[0].prepare(args, kwargs, first_opts)
        return messages, results[-1]

    def apply(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              **options: Any) -> Any:
        steps = self.steps()
        result = steps[0].apply(args, kwargs)
        for step in steps[1:]:
            parent, result = result, step.apply((result.get(),))
            result.parent = parent
        return result


class group(_TaskList):  # noqa: N801 - Celery's name
    """Tasks run in parallel: ``group(add.s(i, i) for i in range(10))()``
    returns a `GroupResult` whose ``get()`` lists their results in order."""

    TYPE = "group"
    BUILTIN = "celery.group"

    def _absorbs(self, sig: Signature) -> bool:
        return type(sig) is group  # a plain nested group: its members

    def __len__(self) -> int:  # type: ignore[override]
        return len(self.tasks)

    def __iter__(self) -> Iterator[Signature]:  # type: ignore[override]
        return iter(self.tasks)

    def __bool__(self) -> bool:
        return True

    def __or__(self, other: Any) -> Signature:
        if isinstance(other, chain) and other.tasks:
            return chain(chord(self, other.tasks[0], app=self._app), *other.tasks[1:],
                         app=self._app)
        if isinstance(other, Signature):
            return chord(self, other, app=self._app)
        return NotImplemented

    def __repr__(self) -> str:
        return f"group([{', '.join(repr(t) for t in self.tasks)}])"

    def link(self, callback: Signature) -> Signature:
        for task in self.tasks:
            task.link(callback)
        return callback

    def link_error(self, errback: Signature) -> Signature:
        for task in self.tasks:
            task.link_error(errback)
        return errback

    def freeze(self, _id: str | None = None, group_id: str | None = None, chord: Any = None,
               root_id: str | None = None, parent_id: str | None = None,
               group_index: int | None = None) -> GroupResult:
        from corekit.result import GroupResult

        gid = _id or self.options.get("task_id") or group_id or str(uuid.uuid4())
        self.options["task_id"] = gid
        results = [task.freeze(group_id=gid, chord=chord, group_index=i)
                   for i, task in enumerate(self.tasks)]
        return GroupResult(gid, results, app=self._app)

    def prepare(self, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None,
                options: Mapping[str, Any]) -> tuple[list[Message], Any]:
        from corekit.result import GroupResult

        options = {**self.options, **options}
        gid = options.pop("task_id", None) or str(uuid.uuid4())
        options.pop("group_index", None)
        options.pop("group_id", None)
        rest = options.pop("chain", None)
        if rest:  # a group with more chain after it: the chain continues from a chord
            body, *others = [maybe_signature(t, self._app) for t in reversed(rest)]
            return chain(chord(self, body, app=self._app), *others,
                         app=self._app).prepare(args, kwargs, options)
        messages: list[Message] = []
        results = []
        for i, task in enumerate(self.tasks):
            # prepare() builds new args, kwargs and options: the member is left as it was
            opts = {**options, "group_id": gid, "group_index": i}
            if "task_id" in task.options:
                opts["task_id"] = task.options["task_id"]
            msgs, res = task.prepare(args, kwargs, opts)
            messages.extend(msgs)
            results.append(res)
        return messages, GroupResult(gid, results, app=self.app)

    def apply(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              **options: Any) -> Any:
        from corekit.result import GroupResult

        gid = options.get("task_id") or self.options.get("task_id") or str(uuid.uuid4())
        return GroupResult(gid, [task.apply(args, kwargs) for task in self.tasks],
                           app=self._app)


class chord(Signature):  # noqa: N801 - Celery's name
    """A group and a body called with the list of the group's results once
    every one of them has succeeded: ``chord(header, body)()`` returns the
    body's result.  A header task that fails fails the body with
    `ChordError` instead of running it."""

    TYPE = "chord"

    def __init__(self, header: Any = None, body: Any = None, args: Sequence[Any] = (),
                 kwargs: Mapping[str, Any] | None = None, app: Corekit | None = None,
                 **options: Any) -> None:
        if _wire_form(header):
            super().__init__(header, app=app)
            inner = self.kwargs
            inner["header"] = _as_group(inner["header"], app)
            inner["body"] = maybe_signature(inner.get("body"), app)
            return
        header_group = _as_group(header, app)
        body_sig = maybe_signature(body, app)
        app = app or header_group._app or (body_sig._app if body_sig is not None else None)
        super().__init__("celery.chord", args, {"header": header_group, "body": body_sig,
                                                "kwargs": dict(kwargs or {})}, options, app=app)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], app: Corekit | None = None) -> chord:
        return cls(dict(data), app=app)

    @property
    def tasks(self) -> list[Signature]:
        return self.header.tasks

    @property
    def header(self) -> group:
        return self.kwargs["header"]

    @property
    def body(self) -> Signature | None:
        return self.kwargs["body"]

    def __call__(self, body: Any = None, **options: Any) -> Any:
        if body is not None:
            return self.clone().set_body(body).apply_async(**options)
        return self.apply_async(**options)

    def set_body(self, body: Any) -> chord:
        self.kwargs["body"] = maybe_signature(body, self._app)
        return self

    def __repr__(self) -> str:
        return f"chord({self.header!r}, {self.body!r})"

    def link(self, callback: Signature) -> Signature:
        assert self.body is not None
        return self.body.link(callback)

    def link_error(self, errback: Signature) -> Signature:
        assert self.body is not None
        return self.body.link_error(errback)

    def freeze(self, _id: str | None = None, group_id: str | None = None, chord: Any = None,
               root_id: str | None = None, parent_id: str | None = None,
               group_index: int | None = None) -> Any:
        body = self._body()
        header_result = self.header.freeze(self.header.options.get("task_id"))
        result = body.freeze(_id, group_id=group_id, chord=chord, group_index=group_index)
        body["chord_size"] = len(self.header.tasks)
        result.parent = header_result
        return result

    def _body(self) -> Signature:
        if self.body is None:
            raise ValueError("a chord needs a body: chord(header, body) or chord(header)(body)")
        return self.body

    def prepare(self, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None,
                options: Mapping[str, Any]) -> tuple[list[Message], Any]:
        options = {**self.options, **options}
        header = self.header  # group.prepare leaves its members as they are
        body = self._body().clone()
        for key in ("link", "link_error"):
            extra = options.pop(key, None)
            for sig in extra if isinstance(extra, (list, tuple)) else [extra] if extra else []:
                getattr(body, key)(sig)
        if options.get("chain"):
            body.options["chain"] = [*(body.options.get("chain") or []),
                                     *options.pop("chain")]  # the body carries on the chain
        result = body.freeze(options.pop("task_id", None), group_id=options.pop("group_id", None),
                             chord=options.pop("chord", None),
                             group_index=options.pop("group_index", None))
        body["chord_size"] = len(header.tasks)
        app = self.app
        if not header.tasks:  # nothing to wait for: the body runs at once
            messages, result = body.prepare(([],), None, {})
            return messages, result
        gid = header.options.get("task_id") or str(uuid.uuid4())
        messages, header_result = header.prepare(
            [*(args or ()), *self.args], kwargs,
            {**options, "task_id": gid, "chord": dict(body)})
        app.backend.save_group(gid, header_result)
        result.parent = header_result
        return messages, result

    def apply(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              **options: Any) -> Any:
        from corekit.exceptions import ChordError

        body = self._body().clone()
        header_result = self.header.apply(args, kwargs)
        values = []
        for res in header_result.results:
            if res.state != "SUCCESS":
                raise ChordError(f"Dependency {res.id} raised {res.result!r}")
            values.append(res.get())
        return body.apply((values,), **options)


def _as_group(value: Any, app: Corekit | None) -> group:
    if isinstance(value, group):
        return value
    if isinstance(value, dict) and value.get("subtask_type") == "group":
        return group.from_dict(value, app)
    if isinstance(value, Signature):
        return group(value, app=app)
    return group(list(value or ()), app=app)


class xmap(Signature):  # noqa: N801 - Celery's name
    """``task.map(items)``: one task message calling ``task(item)`` for each
    item, in the worker, returning the list (``sig()`` runs them here, as
    Celery does; ``delay()``/``apply_async()`` send them)."""

    TYPE = "xmap"
    BUILTIN = "celery.map"

    def __init__(self, task: Any = None, it: Iterable[Any] = (), app: Corekit | None = None,
                 **options: Any) -> None:
        if isinstance(task, dict) and not isinstance(task, Signature) and "kwargs" in task \
                and "task" in task.get("kwargs", {}):
            super().__init__(task, app=app)
            return
        sig = maybe_signature(task, app)
        assert sig is not None
        super().__init__(self.BUILTIN, (), {"task": sig, "it": [_listed(i) for i in it]},
                         options, immutable=True, app=app or sig._app)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], app: Corekit | None = None) -> Signature:
        return cls(dict(data), app=app)

    def __repr__(self) -> str:
        task, it = self.kwargs["task"], self.kwargs["it"]
        name = task["task"] if isinstance(task, dict) else task
        return f"[{name}(x) for x in {it!r}]"


class xstarmap(xmap):  # noqa: N801 - Celery's name
    """``task.starmap(items)``: ``task(*item)`` for each item."""

    TYPE = "xstarmap"
    BUILTIN = "celery.starmap"

    def __repr__(self) -> str:
        task, it = self.kwargs["task"], self.kwargs["it"]
        name = task["task"] if isinstance(task, dict) else task
        return f"[{name}(*x) for x in {it!r}]"


def _listed(item: Any) -> Any:
    return list(item) if isinstance(item, tuple) else item


class chunks(Signature):  # noqa: N801 - Celery's name
    """``task.chunks(items, n)``: the items split into parts of *n*, each
    part one ``starmap`` task; calling it sends them as a group."""

    TYPE = "chunks"

    def __init__(self, task: Any = None, it: Iterable[Any] = (), n: int = 1,
                 app: Corekit | None = None, **options: Any) -> None:
        if isinstance(task, dict) and not isinstance(task, Signature) and "kwargs" in task \
                and "n" in task.get("kwargs", {}):
            super().__init__(task, app=app)
            return
        if n < 1:
            raise ValueError(f"chunks need a size of at least 1, not {n}")
        sig = maybe_signature(task, app)
        assert sig is not None
        super().__init__("celery.chunks", (), {"task": sig, "it": [_listed(i) for i in it],
                                               "n": int(n)}, options, immutable=True,
                         app=app or sig._app)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], app: Corekit | None = None) -> Signature:
        return cls(dict(data), app=app)

    def __call__(self, **options: Any) -> Any:
        return self.apply_async((), {}, **options)

    def group(self) -> group:
        """The chunks as a group of ``starmap`` tasks."""
        task = maybe_signature(self.kwargs["task"], self._app)
        items = iter(self.kwargs["it"])
        n = self.kwargs["n"]
        parts = iter(lambda: list(itertools.islice(items, n)), [])
        return group((xstarmap(task, part, app=self._app) for part in parts), app=self._app)

    def prepare(self, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None,
                options: Mapping[str, Any]) -> tuple[list[Message], Any]:
        return self.group().prepare(args, kwargs, {**self.options, **options})

    def apply(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              **options: Any) -> Any:
        return self.group().apply(args, kwargs, **options)

    def __repr__(self) -> str:
        task = self.kwargs["task"]
        name = task["task"] if isinstance(task, dict) else task
        return f"{name}.chunks({self.kwargs['it']!r}, {self.kwargs['n']})"

