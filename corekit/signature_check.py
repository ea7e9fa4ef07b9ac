"""Is it a signature?  Shape checks for signatures from outside.

Two places take signatures they did not build: a worker reading a task
message's workflow parts (the body's third element: ``callbacks``,
``errbacks``, ``chain``, ``chord``), and a client publishing whatever it
was given as ``link=``, ``link_error=`` or a step of a workflow.  Both ask
here, before anything depends on the answer: the worker runs the task
without the parts that are not signatures (`check_embed`), the client
refuses to publish (`check_option`).

The checks are those that would otherwise break a task's follow-up: a
task name that is a non-empty string; args a list, kwargs and options
dicts; the canvas options (``link``, ``link_error``, ``chain``, ``chord``)
signatures in turn; the message options corekit reads of the right type;
the workflow types (chain, group, chord, map, starmap, chunks) with the
parts they are made of.  Nesting is bounded.
"""
from __future__ import annotations

import math
import reprlib
from datetime import datetime
from typing import Any, Callable, Mapping

from corekit.exceptions import MalformedSignature

#: deeper nesting than this is refused (a hostile producer's recursion)
MAX_DEPTH = 32
#: seconds: more than this (about 3,000 years) overflows a datetime
MAX_SECONDS = 1e11

_SEQUENCE = (list, tuple)
#: how a bad value is shown: a few items and characters of it, however big it is
_SHOW = reprlib.Repr()
_SHOW.maxstring = _SHOW.maxother = 40
_SHOW.maxlist = _SHOW.maxtuple = _SHOW.maxdict = 3
_SHOW.maxlevel = 2


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {_SHOW.repr(value)}"


def signature_problem(value: Any, where: str, depth: int = 0) -> str | None:
    """What is wrong with *value* as a signature (*where* names it in the
    answer), or None if nothing is."""
    if depth > MAX_DEPTH:
        return f"{where}: signatures nested more than {MAX_DEPTH} deep"
    if not isinstance(value, dict):
        return f"{where}: a signature is a dict, not {_kind(value)}"
    task = value.get("task")
    if not isinstance(task, str) or not task:
        got = "it has none" if "task" not in value else f"not {_kind(task)}"
        return f"{where}: a signature needs a task name (a non-empty string); {got}"
    args, kwargs, options = value.get("args"), value.get("kwargs"), value.get("options")
    if args is not None and not isinstance(args, _SEQUENCE):
        return f"{where}.args: must be a list, not {_kind(args)}"
    if kwargs is not None and not _str_keyed(kwargs):
        return f"{where}.kwargs: must be a dict with string keys, not {_kind(kwargs)}"
    if options is not None:
        if not _str_keyed(options):
            return f"{where}.options: must be a dict with string keys, not {_kind(options)}"
        problem = options_problem(options, f"{where}.options", depth)
        if problem:
            return problem
    size = value.get("chord_size")
    if size is not None and (type(size) is not int or size < 0):
        return f"{where}.chord_size: must be a whole number, not {_kind(size)}"
    kind = value.get("subtask_type")
    if kind is not None and not isinstance(kind, str):
        return f"{where}.subtask_type: must be a string, not {_kind(kind)}"
    check = _WORKFLOW_CHECKS.get(kind)
    return check(kwargs or {}, f"{where}.kwargs", depth) if check is not None else None


def options_problem(options: Mapping[str, Any], where: str, depth: int = 0,
                    canvas: bool = True) -> str | None:
    """What is wrong with a signature's (or a call's) *options*; with
    ``canvas=False`` the nested signatures (``link``, ``chain``...) are
    left to whoever checks them next."""
    for name, value in options.items():
        if value is None:
            continue
        wanted = _VALUE_CHECKS.get(name)
        if wanted is not None:
            want = wanted(value)
            if want:
                return f"{where}.{name}: must be {want}, not {_kind(value)}"
        elif canvas:
            nested = _CANVAS_CHECKS.get(name)
            if nested is not None:
                problem = nested(value, f"{where}.{name}", depth + 1)
                if problem:
                    return problem
    return None


def _seconds(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and abs(value) < MAX_SECONDS)


def _str_keyed(value: Any) -> bool:
    return isinstance(value, dict) and (not value or all(type(k) is str for k in value))


def _one_or_many(value: Any, where: str, depth: int) -> str | None:
    """A signature, or a list of them (``link=``)."""
    if isinstance(value, dict):
        return signature_problem(value, where, depth)
    return _many(value, where, depth)


def _many(value: Any, where: str, depth: int) -> str | None:
    if not isinstance(value, _SEQUENCE):
        return f"{where}: must be a list of signatures, not {_kind(value)}"
    for i, item in enumerate(value):
        problem = signature_problem(item, f"{where}[{i}]", depth)
        if problem:
            return problem
    return None


def _task_list(kwargs: Mapping[str, Any], where: str, depth: int) -> str | None:
    return _many(kwargs.get("tasks"), f"{where}.tasks", depth + 1)


def _chord(kwargs: Mapping[str, Any], where: str, depth: int) -> str | None:
    header = kwargs.get("header")
    problem = (signature_problem(header, f"{where}.header", depth + 1)
               if isinstance(header, dict) else _many(header, f"{where}.header", depth + 1))
    if problem:
        return problem
    inner = kwargs.get("kwargs")
    if inner is not None and not _str_keyed(inner):
        return f"{where}.kwargs: must be a dict with string keys, not {_kind(inner)}"
    return signature_problem(kwargs.get("body"), f"{where}.body", depth + 1)


def _mapped(kwargs: Mapping[str, Any], where: str, depth: int) -> str | None:
    problem = signature_problem(kwargs.get("task"), f"{where}.task", depth + 1)
    if problem:
        return problem
    if not isinstance(kwargs.get("it"), _SEQUENCE):
        return f"{where}.it: must be a list, not {_kind(kwargs.get('it'))}"
    return None


def _chunks(kwargs: Mapping[str, Any], where: str, depth: int) -> str | None:
    n = kwargs.get("n")
    if type(n) is not int or n < 1:
        return f"{where}.n: must be a whole number of at least 1, not {_kind(n)}"
    return _mapped(kwargs, where, depth)


_WORKFLOW_CHECKS: dict[str | None, Callable[[Mapping[str, Any], str, int], str | None]] = {
    "chain": _task_list,
    "group": _task_list, "chord": _chord, "xmap": _mapped, "xstarmap": _mapped,
    "chunks": _chunks}


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) else "a string"


def _number_of_seconds(value: Any) -> str | None:
    return None if _seconds(value) else "a number of seconds"


def _when(value: Any) -> str | None:
    return None if _seconds(value) or isinstance(value, datetime) else "a datetime or a number"


def _whole(low: int, high: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        ok = type(value) is int and low <= value <= high
        return None if ok else f"a whole number from {low} to {high}"
    return check


def _headers(value: Any) -> str | None:
    return None if _str_keyed(value) else "a dict with string keys"


#: the message options corekit reads: what each must be
_VALUE_CHECKS: dict[str, Callable[[Any], str | None]] = {
    **dict.fromkeys(("task_id", "group_id", "root_id", "parent_id", "queue", "routing_key",
                     "exchange", "serializer", "compression", "shadow", "reply_to"), _string),
    **dict.fromkeys(("countdown", "time_limit", "soft_time_limit"), _number_of_seconds),
    "eta": _when, "expires": _when, "priority": _whole(0, 255),
    "retries": _whole(0, 10**9), "group_index": _whole(0, 10**9), "headers": _headers}
#: the options that are signatures in turn
_CANVAS_CHECKS: dict[str, Callable[[Any, str, int], str | None]] = {
    "link": _one_or_many, "link_error": _one_or_many, "chain": _many,
    "chord": signature_problem}


def check_signature(value: Any, where: str) -> None:
    """Raise `MalformedSignature` if *value* is not a signature."""
    problem = signature_problem(value, where)
    if problem:
        raise MalformedSignature(f"not a signature: {problem}")


def check_option(name: str, value: Any) -> None:
    """Raise `MalformedSignature` if the canvas option *name* (``link``,
    ``link_error``: one signature or a list; ``chain``: a list; ``chord``:
    one) given to a publish is not what it must be."""
    if name == "chord":
        problem = signature_problem(value, name)
    elif name == "chain":
        problem = _many(value, name, 0)
    else:
        problem = _one_or_many(value, name, 0)
    if problem:
        raise MalformedSignature(f"not a signature: {problem}")


def check_embed(embed: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """A received message's workflow parts without those that are not
    well formed, and what was wrong with each one left out.

    A callback or errback is left out on its own (the others still run);
    a chain with one bad step is left out whole (running the steps around
    it would feed them the wrong values)."""
    if embed is None:
        return None, []
    if not isinstance(embed, dict):
        return None, [f"embed: the body's third element must be a dict, not {_kind(embed)}"]
    clean = dict(embed)
    problems: list[str] = []
    for name in ("callbacks", "errbacks"):
        value = embed.get(name)
        if not value:
            continue
        if not isinstance(value, _SEQUENCE):
            problems.append(f"{name}: must be a list of signatures, not {_kind(value)}")
            clean[name] = None
            continue
        kept = []
        for i, item in enumerate(value):
            problem = signature_problem(item, f"{name}[{i}]")
            if problem:
                problems.append(problem)
            else:
                kept.append(item)
        clean[name] = kept or None
    for name, check in (("chain", _many), ("chord", signature_problem)):
        value = embed.get(name)
        if value:
            problem = check(value, name, 0)
            if problem:
                problems.append(problem)
                clean[name] = None
    return clean, problems
