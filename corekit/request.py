"""The context of a running task: ``self.request`` inside a task."""
from __future__ import annotations

from contextvars import ContextVar
from typing import Any


class Request:
    """What a task knows about the call that is running it."""

    __slots__ = ("id", "task", "args", "kwargs", "retries", "eta", "expires", "is_eager",
                 "called_directly", "root_id", "parent_id", "group", "group_index",
                 "hostname", "delivery_info", "reply_to", "correlation_id", "origin",
                 "timelimit", "ignore_result", "headers", "callbacks", "errbacks", "chain",
                 "chord", "redelivered", "__dict__")

    def __init__(self, **fields: Any) -> None:
        self.id: str | None = None
        self.task: str | None = None
        self.args: list[Any] = []
        self.kwargs: dict[str, Any] = {}
        self.retries = 0
        self.eta: str | None = None
        self.expires: str | None = None
        self.is_eager = False
        self.called_directly = True
        self.root_id: str | None = None
        self.parent_id: str | None = None
        self.group: str | None = None
        self.group_index: int | None = None
        self.hostname: str | None = None
        self.delivery_info: dict[str, Any] = {}
        self.reply_to: str | None = None
        self.correlation_id: str | None = None
        self.origin: str | None = None
        self.timelimit: list[Any] = [None, None]
        self.ignore_result = False
        self.headers: dict[str, Any] = {}
        self.callbacks: Any = None
        self.errbacks: Any = None
        self.chain: Any = None
        self.chord: Any = None
        self.redelivered = False
        for key, value in fields.items():
            setattr(self, key, value)

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
