"""What happens when a task of a workflow ends: the canvas at run time.

- success: the next task of its chain and its ``link`` callbacks are sent
  with its return value (in one publish), from where the task ran, while
  its request is still current, so they are its children;
- failure: its ``link_error`` errbacks run: one whose task takes three
  arguments is called right here as ``errback(request, exc, traceback)``,
  as Celery does; any other is sent with the failed task's id;
- a chord's header task that ended (`on_chord_part`): the worker counts it
  in the result backend (``incr`` on the group id) once its own state is
  stored; the part that brings the count to ``chord_size`` reads the
  header's results and sends the body with them, or, if one of them
  failed, stores the body as failed with `ChordError` naming that task.
  No task polls for the join.
"""
from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any, Mapping, NoReturn

from corekit import states
from corekit.canvas import Signature, chain, chord, group, signature
from corekit.exceptions import (ChordError, EncodeError, Ignore, ImproperlyConfigured,
                                MalformedSignature)
from corekit.request import Request

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.result_backend import ResultBackend
    from corekit.task import Task

logger = logging.getLogger("corekit.worker")


#: what building or preparing a malformed follow-up raises (an unknown
#: serializer or compression in its options: ImproperlyConfigured)
_MALFORMED = (MalformedSignature, ImproperlyConfigured, TypeError, ValueError, KeyError,
              AttributeError)


def after_success(app: Corekit, request: Request, retval: Any) -> None:
    """Send the chain's next task and the callbacks, with *retval*.

    The worker left out the parts of the message that are not signatures
    (`corekit.signature_check.check_embed`); one that still cannot be
    prepared is logged and skipped, and the others are sent: the task's
    own outcome stands.  A failure to publish is raised (the task fails)."""
    followers: list[tuple[Any, dict[str, Any]]] = [
        (callback, {}) for callback in request.callbacks or ()]
    if request.chain:
        rest = list(request.chain)
        followers.append((rest.pop(), {"chain": rest} if rest else {}))
    if app.conf.task_always_eager:
        for sig, options in followers:
            signature(sig, app=app).apply_async((retval,), **options)
        return
    from corekit.producer import add_to_parent

    messages = []
    for sig, options in followers:
        try:
            msgs, result = signature(sig, app=app).prepare((retval,), None, options)
        except _MALFORMED:
            logger.exception("Task %s[%s] succeeded, but its follow-up %.200r cannot be sent "
                             "(the task keeps its result)", request.task, request.id, sig)
            continue
        messages.extend(msgs)
        add_to_parent(result)
    app.publish_tasks(messages)


def unstorable_result(task: Task[Any, Any], request: Request, retval: Any
                      ) -> EncodeError | None:
    """The error that fails a task of a workflow whose result the backend
    cannot store (cannot encode, or over ``result_max_size``), or None:
    found here, before its followers are sent, and not once the writer
    stores the result, so that it fails as any failing task does."""
    if request.is_eager or (not request.chord and (
            request.ignore_result or task.option("ignore_result", "task_ignore_result"))):
        return None  # nothing will be encoded
    from corekit.result_backend import ResultBackend

    backend = task.app.backend
    why = backend.unstorable(ResultBackend.make_meta(request.id or "", retval, states.SUCCESS))
    return None if why is None else EncodeError(why)


def call_errbacks(app: Corekit, request: Request, exc: BaseException,
                  traceback: str | None) -> None:
    """Run the failed task's errbacks (see the module's doc); an errback
    that raises is logged, the others still run."""
    send: list[Signature] = []
    for errback in request.errbacks or ():
        try:
            sig = signature(errback, app=app)
        except _MALFORMED:
            logger.exception("errback %.200r of task %s[%s] is not a signature", errback,
                             request.task, request.id)
            continue
        task = app.tasks.get(sig.task)
        if task is not None and not sig.immutable and _takes_request(task):
            try:
                sig(request, exc, traceback)
            except Exception:
                logger.exception("errback %r of task %s[%s] raised", sig, request.task,
                                 request.id)
        else:
            send.append(sig)
    for sig in send:
        try:
            sig.apply_async((request.id,))
        except Exception:
            logger.exception("could not send errback %r of task %s[%s]", sig, request.task,
                             request.id)


def _takes_request(task: Task[Any, Any]) -> bool:
    """An errback in Celery's ``(request, exc, traceback)`` form: its
    function takes more than one positional argument."""
    try:
        params = inspect.signature(task.run).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) > 1 or any(p.kind is p.VAR_POSITIONAL for p in params)


def chain_failure(meta: Mapping[str, Any], rest: list[Any], app: Corekit
                  ) -> tuple[list[dict[str, Any]], list[tuple[str, Any]]]:
    """A task failed (or was revoked) with *rest* of its chain still to
    come: *meta*'s state under the id of every result those steps would
    have had, and the chord parts (group id, body) they owed."""
    metas: list[dict[str, Any]] = []
    parts: list[tuple[str, Any]] = []
    for step in rest:
        for sig in _result_holders(signature(step, app=app)):
            opts = sig.options
            if opts.get("task_id"):
                metas.append({**meta, "task_id": opts["task_id"], "children": []})
            if opts.get("chord") and opts.get("group_id"):
                parts.append((opts["group_id"], opts["chord"]))
    return metas, parts


def left_out_chain_failure(app: Corekit, chain: Any, task: Any, task_id: Any
                           ) -> tuple[list[dict[str, Any]], list[tuple[str, Any]]]:
    """The worker left the *chain* after task *task_id* out of its message
    (a step is not a well-formed signature): a FAILURE (`MalformedSignature`
    naming the bad part) under the result id of each well-formed step, and
    the chord parts they owed, as `chain_failure` gives, so that nobody
    waits on them forever.  Nothing for a chain that is not a list."""
    from corekit.result_backend import ResultBackend
    from corekit.signature_check import signature_problem

    if not isinstance(chain, (list, tuple)):
        return [], []
    problems = [signature_problem(step, f"chain[{i}]") for i, step in enumerate(chain)]
    bad = "; ".join([problem for problem in problems if problem][:5])
    if not bad:
        return [], []
    meta = ResultBackend.make_meta("", MalformedSignature(
        f"the worker left out the chain after task {task!s:.100}[{task_id!s:.100}]: {bad}"),
        states.FAILURE)
    metas: list[dict[str, Any]] = []
    parts: list[tuple[str, Any]] = []
    for step, problem in zip(chain, problems):
        if problem is None:
            try:
                more, owed = chain_failure(meta, [step], app)
            except _MALFORMED:
                logger.exception("cannot fail step %.200r of a left-out chain", step)
                continue
            metas.extend(more)
            parts.extend(owed)
    return metas, parts


def _result_holders(sig: Signature) -> list[Signature]:
    """The plain signatures whose results stand for *sig*'s: a chord's
    body, a group's members, every task of a chain."""
    if isinstance(sig, chord):
        return _result_holders(sig.body) if sig.body is not None else []
    if isinstance(sig, (group, chain)):
        return [holder for task in sig.tasks for holder in _result_holders(task)]
    return [sig]


def on_chord_parts(app: Corekit, backend: ResultBackend, parts: list[tuple[str, Any]]) -> None:
    for group_id, body in parts:
        on_chord_part(app, backend, group_id, body)


def on_chord_part(app: Corekit, backend: ResultBackend, group_id: str,
                  body: Mapping[str, Any]) -> None:
    """A header task of the chord *group_id* is done and its state stored.

    The part whose count reaches ``chord_size`` joins.  A part that ran
    twice (redelivered after a crash between its count and its ack) counts
    twice, so the count may reach the size early: the joiner then finds a
    header task not ready and leaves the join to the parts still to come
    (each sees a count past the size and looks again).  The last part to
    count always finds every state stored; a second counter makes sure
    only one part joins."""
    sig = signature(dict(body), app=app)
    size = body.get("chord_size") or backend.chord_size(group_id)
    if not size:
        if backend.incr(group_id + ".joined") == 1:
            fail_chord(app, backend, sig, ChordError(
                f"chord {group_id} cannot be joined here: its body carries no chord_size "
                f"(a recent Celery client sent it, for Celery's own Redis join)"))
        return
    if backend.incr(group_id) < size:
        return
    header = backend.restore_group(group_id)
    if header is None:
        if backend.incr(group_id + ".joined") == 1:
            fail_chord(app, backend, sig, ChordError(
                f"chord {group_id}: its header's group result is gone from the result "
                f"backend (expired, or the chord was sent by a client that does not save it)"))
        return
    metas = backend.get_many([r.id for r in header.results])
    if any(meta["status"] not in states.READY_STATES for meta in metas):
        logger.info("chord %s: counted %d parts but not all are done (one ran twice): "
                    "the last one joins", group_id, size)
        return
    if backend.incr(group_id + ".joined") != 1:
        return  # another part joined it
    join_chord(app, backend, sig, metas)


def join_chord(app: Corekit, backend: ResultBackend, body: Signature,
               metas: list[dict[str, Any]]) -> None:
    """Every header task has ended: send the body with their results, or
    fail it with the first failure."""
    for meta in metas:
        if meta["status"] != states.SUCCESS:
            fail_chord(app, backend, body, ChordError(
                f"Dependency {meta['task_id']} raised {_describe(meta)}"))
            return
    body.apply_async(([meta["result"] for meta in metas],))


def _describe(meta: Mapping[str, Any]) -> str:
    from corekit.result_backend import revoked_reason
    from corekit.worker.job import describe_failure

    if meta["status"] == states.REVOKED:
        return f"TaskRevokedError: {revoked_reason(meta)}"
    if meta["status"] != states.FAILURE:
        return f"state {meta['status']}"
    return describe_failure(meta["result"])


def fail_chord(app: Corekit, backend: ResultBackend, body: Signature, exc: ChordError) -> None:
    """The body does not run: its result is *exc*, and its errbacks run."""
    body_id = body.freeze().id
    logger.error("Chord body %s[%s] will not run: %s", body.task, body_id, exc)
    backend.store_many([backend.make_meta(body_id, exc, states.FAILURE)])
    errbacks = body.options.get("link_error")
    if errbacks:
        request = Request(id=body_id, task=body.task, args=body.args, kwargs=body.kwargs,
                          errbacks=errbacks, called_directly=False)
        call_errbacks(app, request, exc, None)


def replace_task(task: Task[Any, Any], sig: Signature) -> NoReturn:
    """`Task.replace`: send *sig* in the place of the running task."""
    request = task.request
    if request.called_directly:
        raise RuntimeError(f"task {task.name} was called directly, not by a worker: "
                           f"there is nothing to replace")
    app = task.app
    sig = signature(sig, app=app)
    if isinstance(sig, group) and not isinstance(sig, chord):
        # the group's results, as a list, become this task's result
        sig = chord(sig, app.tasks["celery.accumulate"].s(), app=app)
    for callback in request.callbacks or ():
        sig.link(signature(callback, app=app))
    for errback in request.errbacks or ():
        sig.link_error(signature(errback, app=app))
    sig.freeze(request.id)
    extra = {"chord": request.chord, "group_id": request.group,
             "group_index": request.group_index}
    sig.set(**{k: v for k, v in extra.items() if v is not None})
    if request.chain:
        sig = chain(sig, *[signature(t, app=app) for t in reversed(request.chain)], app=app)
    if request.is_eager:
        raise _EagerReplace(sig.apply().get())
    sig.apply_async()
    raise Ignore(f"replaced by {sig!r}")


class _EagerReplace(Ignore):
    """Raised by an eager `Task.replace`: the replacement's value is the
    task's return value."""

    def __init__(self, value: Any) -> None:
        super().__init__("replaced")
        self.value = value

