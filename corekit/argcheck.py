"""Check a call's arguments against a task function's signature at the cost
of one Python call (Celery's ``typing``).

``inspect.Signature.bind`` is pure Python and costs several microseconds on
every ``delay()``; instead a stub with the same parameters (annotations
dropped, every default a placeholder) is compiled once per task, as
Celery's ``head_from_fun`` does, and the interpreter's own argument binding
does the check.  The stub's source is made only of the function's parameter
names, which are identifiers.
"""
from __future__ import annotations

from typing import Any, Callable


class _Default:
    """Stands for every default value in the stub's source."""

    def __repr__(self) -> str:
        return "_default"


def argument_checker(function: Callable[..., Any]) -> tuple[str, Callable[..., None]] | None:
    """``(signature text, stub)`` for *function* (bound methods leave
    ``self`` out), or None when its signature cannot be read (a builtin)."""
    import inspect

    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return None
    empty = inspect.Parameter.empty
    plain = signature.replace(
        parameters=[p.replace(annotation=empty,
                              default=empty if p.default is empty else _Default())
                    for p in signature.parameters.values()],
        return_annotation=empty)
    namespace: dict[str, Any] = {"_default": None}
    exec(f"def check{plain}:\n    pass\n", namespace)  # noqa: S102 - identifiers only
    return str(signature), namespace["check"]


def call_error(exc: TypeError) -> str:
    """The interpreter's complaint about the stub, without the stub's name."""
    text = str(exc)
    return text[len("check() "):] if text.startswith("check() ") else text
