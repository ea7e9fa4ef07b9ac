"""`Task`: what ``@app.task`` makes of a function."""
from __future__ import annotations

import functools
import random
from datetime import datetime
from typing import (TYPE_CHECKING, Any, Callable, ClassVar, Generic, Iterable, Mapping, NoReturn,
                    ParamSpec, Sequence, TypeVar)

from corekit.exceptions import MaxRetriesExceededError, Retry
from corekit.request import Request, current_request

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.canvas import Signature
    from corekit.result import AsyncResult, EagerResult

P = ParamSpec("P")
R = TypeVar("R", covariant=True)


def exponential_backoff(factor: float, retries: int, maximum: float, full_jitter: bool) -> float:
    """``factor * 2**retries`` capped at *maximum*; with full jitter, a
    uniformly random delay between 0 and that (AWS's "full jitter")."""
    countdown = min(maximum, factor * (2 ** retries))
    if full_jitter:
        countdown = random.uniform(0, countdown)
    return max(0.0, countdown)


_EAGER_OPTIONS = ("link", "link_error", "chain", "chord", "group_id", "group_index")


def _eager_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options an eager call keeps: where it goes does not matter."""
    return {k: options[k] for k in _EAGER_OPTIONS if options.get(k) is not None}


class Task(Generic[P, R]):
    """A task type.  ``@app.task`` makes a subclass whose `run` is the
    decorated function and returns its single instance.

    Class attributes are the task's options; ``None`` means "use the app's
    setting" (``task_acks_late`` for `acks_late`, and so on).
    """

    name: ClassVar[str] = ""
    app: ClassVar[Corekit]
    #: check a call's arguments against `run`'s signature when it is sent
    #: (`check_arguments`): a call that cannot fit fails where it is made
    typing: ClassVar[bool] = True
    bind: ClassVar[bool] = False
    ignore_result: ClassVar[bool | None] = None
    track_started: ClassVar[bool | None] = None
    #: None: the ``result_extended`` setting
    result_extended: ClassVar[bool | None] = None
    acks_late: ClassVar[bool | None] = None
    reject_on_worker_lost: ClassVar[bool | None] = None
    acks_on_failure_or_timeout: ClassVar[bool | None] = None
    serializer: ClassVar[str | None] = None
    compression: ClassVar[str | None] = None
    max_retries: ClassVar[int | None] = 3
    default_retry_delay: ClassVar[float | None] = None
    autoretry_for: ClassVar[tuple[type[BaseException], ...]] = ()
    dont_autoretry_for: ClassVar[tuple[type[BaseException], ...]] = ()
    retry_kwargs: ClassVar[Mapping[str, Any]] = {}
    retry_backoff: ClassVar[bool | float] = False
    retry_backoff_max: ClassVar[float] = 600
    retry_jitter: ClassVar[bool] = True
    time_limit: ClassVar[float | None] = None
    soft_time_limit: ClassVar[float | None] = None
    rate_limit: ClassVar[str | None] = None
    #: the rate limit holds for all workers together (kept on the broker)
    rate_limit_global: ClassVar[bool] = False
    expires: ClassVar[float | datetime | None] = None
    queue: ClassVar[str | None] = None
    priority: ClassVar[int | None] = None
    #: expected exceptions: a failure with one of them is logged at INFO
    #: without a traceback (the result is FAILURE all the same)
    throws: ClassVar[tuple[type[BaseException], ...]] = ()
    #: `run`'s signature as a caller sees it (without ``self``) and a stub that
    #: checks a call against it (`corekit.argcheck`), worked out once; False
    #: when it cannot be read (nothing to check)
    _call_signature: ClassVar[tuple[str, Callable[..., None]] | bool | None] = None
    #: whether a handler is overridden; None until `has_handlers` looks
    _has_handlers: ClassVar[bool | None] = None

    def run(self, *args: P.args, **kwargs: P.kwargs) -> R:
        raise NotImplementedError(f"task {self.name!r} has no run method")

    # -- handlers (Celery's): override them, or set them with task_annotations ----
    #: *einfo* is the formatted traceback; a handler that raises is logged
    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        """Called in the worker before the task runs."""

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        """Called when the task succeeded."""

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any,
                   einfo: Any) -> None:
        """Called when the task failed."""

    def on_retry(self, exc: BaseException, task_id: str, args: Any, kwargs: Any,
                 einfo: Any) -> None:
        """Called when the task is to be retried."""

    def after_return(self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any,
                     einfo: Any) -> None:
        """Called after the task returned, whatever the outcome."""

    @classmethod
    def has_handlers(cls) -> bool:
        """Whether this task overrides one of the handlers (worked out once)."""
        found = cls.__dict__.get("_has_handlers")
        if found is None:
            found = any(getattr(cls, name) is not getattr(Task, name) for name in
                        ("before_start", "on_success", "on_failure", "on_retry",
                         "after_return"))
            cls._has_handlers = found
        return bool(found)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.run(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<@task: {self.name} of {self.app.main or '__main__'}>"

    # -- options resolved against the app's configuration ------------------
    def option(self, name: str, setting: str) -> Any:
        value = getattr(self, name)
        return self.app.conf[setting] if value is None else value

    @property
    def request(self) -> Request:
        """The running call's context, or an empty one when called directly."""
        request = current_request()
        if request is not None and request.task == self.name:
            return request
        return Request(task=self.name)

    @property
    def backend(self) -> Any:
        return self.app.backend

    # -- calling -------------------------------------------------------------
    def check_arguments(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """TypeError when *args* and *kwargs* do not fit the task function
        (Celery's ``typing``): asked by `apply_async` and by a signature
        being sent, so a call that could never run fails where it is made
        rather than in a worker."""
        cls = type(self)
        checker = cls.__dict__.get("_call_signature")
        if checker is None:  # at the first call checked, not at every app's creation
            from corekit.argcheck import argument_checker

            checker = argument_checker(self.run) or False  # bound: without self
            cls._call_signature = checker
        if checker is False:
            return
        try:
            checker[1](*args, **kwargs)
        except TypeError as exc:
            from corekit.argcheck import call_error

            raise TypeError(f"{self.name}{checker[0]}: {call_error(exc)} (typing=False on the "
                            f"task skips this check)") from None

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Send the task with these arguments; ``apply_async`` with defaults."""
        return self.apply_async(args, kwargs)

    def delay_on_commit(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """`delay` once the current database transaction commits; nothing is
        sent if it rolls back (Django; `corekit.producer.on_commit`)."""
        self.apply_async_on_commit(args, kwargs)

    def apply_async_on_commit(self, args: Sequence[Any] | None = None,
                              kwargs: Mapping[str, Any] | None = None, **options: Any) -> None:
        """`apply_async` once the current database transaction commits;
        nothing is sent if it rolls back.  Returns None: no task exists yet."""
        from corekit.producer import on_commit

        on_commit(self.app, functools.partial(self.apply_async, args, kwargs, **options))

    def apply_async(self, args: Sequence[Any] | None = None,
                    kwargs: Mapping[str, Any] | None = None, *,
                    task_id: str | None = None, countdown: float | None = None,
                    eta: datetime | float | None = None, expires: float | datetime | None = None,
                    queue: str | None = None, serializer: str | None = None,
                    compression: str | None = None, priority: int | None = None,
                    **options: Any) -> AsyncResult[R]:
        """Send the task to a worker.  See `Corekit.send_task` for options."""
        if not self.app._finalized:  # task_annotations may set this task's options
            self.app.finalize()
        if self.typing:
            self.check_arguments(args or (), kwargs or {})
        options.update(task_id=task_id, countdown=countdown, eta=eta, expires=expires,
                       queue=queue, serializer=serializer, compression=compression,
                       priority=priority)
        if self.app.conf.task_always_eager:
            return self.apply(args, kwargs, task_id=task_id,  # type: ignore[return-value]
                              **_eager_options(options))
        return self.app.send_task(self.name, args, kwargs, **self.send_options(options))

    def send_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """*options* for `Corekit.send_task`, with this task's own defaults
        (queue, serializer, expires, time limits...) where they say nothing."""
        opts = dict(options)
        for name in ("queue", "serializer", "compression"):
            opts[name] = opts.get(name) or getattr(self, name)
        for name in ("expires", "priority", "time_limit", "soft_time_limit", "ignore_result"):
            if opts.get(name) is None:
                opts[name] = getattr(self, name)
        return opts

    def apply(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              task_id: str | None = None, throw: bool | None = None, retries: int = 0,
              **options: Any) -> EagerResult[R]:
        """Run the task here and now (eagerly), with retries run inline;
        ``link``/``link_error`` and the rest of a chain are applied as a
        worker would."""
        import uuid

        from corekit.trace import apply_eagerly

        self.app.finalize()
        embed = _eager_options(options)
        if embed:
            from corekit.producer import check_canvas_options

            check_canvas_options(**{k: embed.get(k) for k in ("link", "link_error", "chain",
                                                               "chord")})
        if throw is None:
            throw = self.app.conf.task_eager_propagates
        return apply_eagerly(self, list(args or ()), dict(kwargs or {}),
                             task_id or str(uuid.uuid4()), throw, retries, embed=embed)

    # -- signatures (`corekit.canvas`) ----------------------------------------
    def signature(self, args: Sequence[Any] | None = None,
                  kwargs: Mapping[str, Any] | None = None, **options: Any) -> Signature:
        """This task with *args*, *kwargs* and *options*, as a `Signature`
        (``immutable=True`` ignores the arguments a callback would add)."""
        from corekit.canvas.signature import Signature  # a module: no package lookup per call

        return Signature(self, args, kwargs, app=self.app, **options)

    subtask = signature

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """``signature(args, kwargs)``: ``add.s(2, 2)``."""
        return self.signature(args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: ``add.si(2, 2)``."""
        return self.signature(args, kwargs, immutable=True)

    def map(self, it: Iterable[Any]) -> Signature:
        """One task message running this task on each item, in a worker."""
        from corekit.canvas import xmap

        return xmap(self.s(), it, app=self.app)

    def starmap(self, it: Iterable[Any]) -> Signature:
        """`map`, with each item spread as the arguments."""
        from corekit.canvas import xstarmap

        return xstarmap(self.s(), it, app=self.app)

    def chunks(self, it: Iterable[Any], n: int) -> Signature:
        """*it* split into starmap tasks of *n* items each."""
        from corekit.canvas import chunks

        return chunks(self.s(), it, n, app=self.app)

    def replace(self, sig: Signature) -> NoReturn:
        """End this run and let *sig* take its place: *sig*'s result is
        stored under this task's id, and this task's callbacks, errbacks,
        chain, group and chord carry over to it.  Raises `Ignore` (in an
        eager call, *sig* runs at once and its value is this task's)."""
        from corekit.workflow import replace_task

        return replace_task(self, sig)

    def AsyncResult(self, task_id: str) -> AsyncResult[R]:  # noqa: N802 - Celery's name
        from corekit.result import AsyncResult

        return AsyncResult(task_id, app=self.app)

    # -- retrying ------------------------------------------------------------
    def retry(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
              exc: BaseException | None = None, throw: bool = True,
              eta: datetime | float | None = None, countdown: float | None = None,
              max_retries: int | None = None, **options: Any) -> Retry:
        """Send this call again, later, and raise `Retry` to end this run.

        Past ``max_retries`` it raises *exc* (or `MaxRetriesExceededError`).
        """
        request = self.request
        if request.called_directly:
            raise exc or RuntimeError(
                f"task {self.name} was called directly, not by a worker: it cannot be retried")
        limit = self.max_retries if max_retries is None else max_retries
        if limit is not None and request.retries >= limit:
            if exc is not None:
                raise exc
            raise MaxRetriesExceededError(
                f"can't retry {self.name}[{request.id}] args:{request.args} "
                f"kwargs:{request.kwargs}: max_retries={limit} reached")
        if countdown is None and eta is None:
            countdown = self.option("default_retry_delay", "task_default_retry_delay")
        ret = Retry(exc=exc, when=countdown if eta is None else eta)
        if request.is_eager:
            ret.eager_args = (args, kwargs)  # type: ignore[attr-defined]
            raise ret
        delivery = request.delivery_info or {}
        self.app.send_task(
            self.name, request.args if args is None else args,
            request.kwargs if kwargs is None else kwargs,
            task_id=request.id, countdown=countdown if eta is None else None, eta=eta,
            retries=request.retries + 1, queue=options.pop("queue", delivery.get("queue")),
            expires=request.expires, root_id=request.root_id, parent_id=request.parent_id,
            group_id=request.group, group_index=request.group_index,
            link=request.callbacks, link_error=request.errbacks, chain=request.chain,
            chord=request.chord, time_limit=request.timelimit[0],
            soft_time_limit=request.timelimit[1], reply_to=request.reply_to,
            ignore_result=request.ignore_result, **options)
        if throw:
            raise ret
        return ret

    def autoretry(self, exc: BaseException) -> None:
        """Called by the tracer when ``run`` raised; retries (raising `Retry`)
        if *exc* is one of ``autoretry_for``, else returns."""
        if not self.autoretry_for or not isinstance(exc, self.autoretry_for):
            return
        if self.dont_autoretry_for and isinstance(exc, self.dont_autoretry_for):
            return
        opts = dict(self.retry_kwargs)
        if self.retry_backoff and "countdown" not in opts:
            factor = 1 if self.retry_backoff is True else float(self.retry_backoff)
            opts["countdown"] = exponential_backoff(
                factor, self.request.retries, self.retry_backoff_max, self.retry_jitter)
        self.retry(exc=exc, **opts)
