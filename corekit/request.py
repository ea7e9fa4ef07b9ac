"""The context of a running task: ``self.request`` inside a task."""
from __future__ import annotations

from contextvars import ContextVar
from typing import Any


#: What a request holds when nothing else is known (the mutable ones are
#: made fresh for each request in `Request.__init__`).
_DEFAULTS: dict[str, Any] = {
    "id": None, "task": None, "retries": 0, "eta": None, "expires": None,
    "is_eager": False, "called_directly": True, "root_id": None, "parent_id": None,
    "group": None, "group_index": None, "hostname": None, "reply_to": None,
    "correlation_id": None, "origin": None, "ignore_result": False, "callbacks": None,
    "errbacks": None, "chain": None, "chord": None, "redelivered": False}


class Request:
    """What a task knows about the call that is running it.

    Built once per task run: two dict updates, not one attribute at a time."""

    id: str | None
    task: str | None
    args: list[Any]
    kwargs: dict[str, Any]
    retries: int
    eta: str | None
    expires: str | None
    is_eager: bool
    called_directly: bool
    root_id: str | None
    parent_id: str | None
    group: str | None
    group_index: int | None
    hostname: str | None
    delivery_info: dict[str, Any]
    reply_to: str | None
    correlation_id: str | None
    origin: str | None
    timelimit: list[Any]
    ignore_result: bool
    headers: dict[str, Any]
    callbacks: Any
    errbacks: Any
    chain: Any
    chord: Any
    redelivered: bool
    #: results of the tasks this run sent (stored in its meta's children)
    children: list[Any]

    def __init__(self, **fields: Any) -> None:
        state = self.__dict__
        state.update(_DEFAULTS)
        state.update(args=[], kwargs={}, delivery_info={}, timelimit=[None, None], headers={},
                     children=[])
        state.update(fields)

    def __repr__(self) -> str:
        return f"<Request {self.task}[{self.id}] retries={self.retries}>"


#: The requests of the tasks running in this context, innermost last.  A
#: context variable, not a thread-local: each thread, each asyncio task and
#: each green thread has its own, so concurrent coroutines on one event loop
#: each see their own ``self.request``.
_stack: ContextVar[tuple[Request, ...]] = ContextVar("corekit_requests", default=())


def current_request() -> Request | None:
    """The request of the task running in this context, if any."""
    stack = _stack.get()
    return stack[-1] if stack else None


def push_request(request: Request) -> None:
    _stack.set(_stack.get() + (request,))


def pop_request() -> None:
    _stack.set(_stack.get()[:-1])
