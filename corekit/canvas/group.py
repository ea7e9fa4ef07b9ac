"""`group` (tasks run in parallel) and `chord` (a group, then a body called
with the group's results)."""
from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from corekit.canvas.signature import Signature, maybe_signature
from corekit.canvas.task_list import _TaskList, _wire_form

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.result import GroupResult
    from corekit.messages import Message


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
        from corekit.canvas.chain import chain

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
            from corekit.canvas.chain import chain

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
