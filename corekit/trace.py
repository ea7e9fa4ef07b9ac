"""Running one task call and turning its end into a state."""
from __future__ import annotations

import inspect
import logging
import traceback as tb
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from corekit import signals, states
from corekit.exceptions import Ignore, Retry
from corekit.request import Request, current_request, pop_request, push_request

if TYPE_CHECKING:
    from corekit.result import EagerResult
    from corekit.task import Task

MAX_EAGER_RETRIES = 1000

logger = logging.getLogger("corekit.worker")


@dataclass(slots=True)
class Outcome:
    """How a call ended: ``state`` is SUCCESS, FAILURE or RETRY."""

    state: str
    retval: Any = None
    exc: BaseException | None = None
    traceback: str | None = None
    retry: Retry | None = None
    #: results of the tasks the run sent (its meta's children)
    children: list[Any] = field(default_factory=list)


def trace(task: Task[Any, Any], request: Request, args: list[Any], kwargs: dict[str, Any]
          ) -> Outcome:
    """Run ``task`` with *request* as its context; never raises an Exception.
    An ``async def`` task runs to its end on an event loop of its own here
    (the asyncio pool awaits it on the worker's loop with `atrace`)."""
    push_request(request)
    try:
        _before(task, request, args, kwargs)
        try:
            retval = task.run(*args, **kwargs)
            if inspect.isawaitable(retval):
                retval = _run_coroutine(retval)
            outcome = _succeeded(task, request, retval)
        except Ignore as exc:
            outcome = _ignored(exc)
        except Exception as exc:
            outcome = _failed(task, exc)
        _after(task, request, args, kwargs, outcome)
        return outcome
    finally:
        pop_request()


async def atrace(task: Task[Any, Any], request: Request, args: list[Any],
                 kwargs: dict[str, Any]) -> Outcome:
    """`trace` for the running event loop: an ``async def`` task is awaited
    here; a plain one runs in place (the caller decides where that is)."""
    push_request(request)
    try:
        _before(task, request, args, kwargs)
        try:
            retval = task.run(*args, **kwargs)
            if inspect.isawaitable(retval):
                retval = await retval
            outcome = _succeeded(task, request, retval)
        except Ignore as exc:
            outcome = _ignored(exc)
        except Exception as exc:
            outcome = _failed(task, exc)
        _after(task, request, args, kwargs, outcome)
        return outcome
    finally:
        pop_request()


def _before(task: Task[Any, Any], request: Request, args: list[Any],
            kwargs: dict[str, Any]) -> None:
    if signals.task_prerun.receivers:
        signals.task_prerun.send(task, task_id=request.id, task=task, args=args, kwargs=kwargs)
    if task._has_handlers is not False and task.has_handlers():  # False: none (cheap)
        _handler(task, task.before_start, request.id, args, kwargs)


def _succeeded(task: Task[Any, Any], request: Request, retval: Any) -> Outcome:
    """SUCCESS, once the chain's next task and the callbacks are sent (a
    failure to send them is raised: the task fails with it).  A task of a
    workflow whose result cannot be stored is a FAILURE (`EncodeError`) and
    sends nothing; a plain task's is left to the result backend."""
    if request.callbacks or request.chain or request.chord or request.errbacks:
        from corekit.workflow import after_success, unstorable_result

        error = unstorable_result(task, request, retval)
        if error is not None:
            return Outcome(states.FAILURE, exc=error, traceback=_format(error))
        if request.callbacks or request.chain:
            after_success(task.app, request, retval)
    return Outcome(states.SUCCESS, retval)


def _ignored(exc: Ignore) -> Outcome:
    from corekit.workflow import _EagerReplace

    if isinstance(exc, _EagerReplace):
        return Outcome(states.SUCCESS, exc.value)
    return Outcome(states.IGNORED)


def _after(task: Task[Any, Any], request: Request, args: list[Any], kwargs: dict[str, Any],
           outcome: Outcome) -> None:
    """Errbacks and the signals for how the call ended (a raising receiver
    is logged)."""
    outcome.children = request.children
    if outcome.state == states.FAILURE and request.errbacks and outcome.exc is not None:
        from corekit.workflow import call_errbacks

        call_errbacks(task.app, request, outcome.exc, outcome.traceback)
    if task._has_handlers is not False and task.has_handlers():  # False: none (cheap)
        _call_handlers(task, request, args, kwargs, outcome)
    if outcome.state == states.SUCCESS:
        if signals.task_success.receivers:
            signals.task_success.send(task, result=outcome.retval)
    elif outcome.state == states.RETRY:
        if signals.task_retry.receivers:
            signals.task_retry.send(task, request=request, reason=outcome.exc,
                                    einfo=outcome.traceback)
    elif outcome.state == states.IGNORED:
        pass
    elif signals.task_failure.receivers:
        signals.task_failure.send(task, task_id=request.id, exception=outcome.exc, args=args,
                                  kwargs=kwargs, traceback=outcome.traceback,
                                  einfo=outcome.traceback)
    if signals.task_postrun.receivers:
        signals.task_postrun.send(task, task_id=request.id, task=task, args=args,
                                  kwargs=kwargs, retval=(outcome.retval if outcome.exc is None
                                                         else outcome.exc),
                                  state=outcome.state)


def _call_handlers(task: Task[Any, Any], request: Request, args: list[Any],
                   kwargs: dict[str, Any], outcome: Outcome) -> None:
    """The task's own handlers (Celery's ``on_success``, ``on_failure``,
    ``on_retry``, ``after_return``), when it has any."""
    state = outcome.state
    if state == states.SUCCESS:
        _handler(task, task.on_success, outcome.retval, request.id, args, kwargs)
    elif state == states.FAILURE:
        _handler(task, task.on_failure, outcome.exc, request.id, args, kwargs,
                 outcome.traceback)
    elif state == states.RETRY:
        _handler(task, task.on_retry, outcome.exc, request.id, args, kwargs, outcome.traceback)
    else:
        return
    retval = outcome.retval if outcome.exc is None else outcome.exc
    _handler(task, task.after_return, state, retval, request.id, args, kwargs,
             outcome.traceback)


def _handler(task: Task[Any, Any], handler: Any, *args: Any) -> None:
    try:
        handler(*args)
    except Exception:
        logger.exception("handler %s of task %s raised", getattr(handler, "__name__", handler),
                         task.name)


def _failed(task: Task[Any, Any], exc: Exception) -> Outcome:
    if isinstance(exc, Retry):
        return _retry_outcome(exc)
    try:
        task.autoretry(exc)
    except Retry as retry:
        return _retry_outcome(retry)
    except Exception as final:  # max retries reached: the task's error stands
        exc = final
    return Outcome(states.FAILURE, exc=exc, traceback=_format(exc))


def _run_coroutine(awaitable: Any) -> Any:
    import asyncio

    async def wait() -> Any:
        return await awaitable

    return asyncio.run(wait())


def _retry_outcome(retry: Retry) -> Outcome:
    return Outcome(states.RETRY, exc=retry.exc or retry, retry=retry,
                   traceback=_format(retry.exc) if retry.exc else None)


def _listed(value: Any) -> list[Any] | None:
    if not value:
        return None
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _format(exc: BaseException) -> str:
    return "".join(tb.format_exception(type(exc), exc, exc.__traceback__))


def apply_eagerly(task: Task[Any, Any], args: list[Any], kwargs: dict[str, Any], task_id: str,
                  throw: bool, retries: int = 0, embed: dict[str, Any] | None = None
                  ) -> EagerResult[Any]:
    """Run the task in this thread; a retry runs again at once.  *embed*
    holds the canvas options (``link``, ``link_error``, ``chain``...)."""
    from corekit.result import EagerResult

    plugins = task.app.plugins
    if not plugins.signal_receivers_connected:
        plugins.connect_signal_receivers()
    parent = current_request()
    embed = embed or {}
    canvas = {"callbacks": _listed(embed.get("link")), "errbacks": _listed(embed.get("link_error")),
              "chain": embed.get("chain"), "chord": embed.get("chord"),
              "group": embed.get("group_id"), "group_index": embed.get("group_index")}
    for _ in range(MAX_EAGER_RETRIES):
        request = Request(id=task_id, task=task.name, args=args, kwargs=kwargs, retries=retries,
                          is_eager=True, called_directly=False,
                          root_id=parent.root_id if parent else task_id,
                          parent_id=parent.id if parent else None, **canvas)
        outcome = trace(task, request, args, kwargs)
        if outcome.state != states.RETRY:
            break
        new_args, new_kwargs = getattr(outcome.retry, "eager_args", (None, None))
        args = list(new_args) if new_args is not None else args
        kwargs = dict(new_kwargs) if new_kwargs is not None else kwargs
        retries += 1
    if task.app.conf.task_store_eager_result and outcome.state != states.IGNORED:
        task.app.backend.store_result(task_id, outcome.exc if outcome.exc else outcome.retval,
                                      outcome.state, outcome.traceback)
    if throw and outcome.state == states.FAILURE and outcome.exc is not None:
        raise outcome.exc
    result = outcome.exc if outcome.state == states.FAILURE else outcome.retval
    return EagerResult(task_id, result, outcome.state, outcome.traceback,
                       children=outcome.children)

