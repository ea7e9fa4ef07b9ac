"""The worker's hot path: compiled modules with pure-Python twins.

The compiled modules (``_decode``, ``_etaheap``, ``_dispatch``) are used when
they are built, unless ``COREKIT_NO_EXTENSIONS`` is set (non-empty, not
``"0"``); `IMPLEMENTATION` says which set is in use ("cython" or "python")
and `FALLBACK_REASON` why the twins were chosen, if they were.  `load` gives
either set by name, so tests and benchmarks can run both side by side.
"""
from __future__ import annotations

import os
from importlib import import_module
from types import SimpleNamespace
from typing import Any

NAMES = ("parse_iso8601", "TaskHeaders", "decode_batch", "EtaHeap", "Dispatcher")


def load(implementation: str) -> Any:
    """A namespace with the five hot-path names from ``"cython"`` (ImportError
    if not built) or ``"python"``."""
    if implementation not in ("cython", "python"):
        raise ValueError(f"unknown implementation {implementation!r}: 'cython' or 'python'")
    prefix = "corekit._speedups._" if implementation == "cython" else "corekit._speedups."
    decode, etaheap, dispatch = (import_module(prefix + name)
                                 for name in ("decode", "etaheap", "dispatch"))
    return SimpleNamespace(
        IMPLEMENTATION=implementation, parse_iso8601=decode.parse_iso8601,
        TaskHeaders=decode.TaskHeaders, decode_batch=decode.decode_batch,
        EtaHeap=etaheap.EtaHeap, Dispatcher=dispatch.Dispatcher)


def _choose() -> tuple[Any, str | None]:
    if os.environ.get("COREKIT_NO_EXTENSIONS", "") not in ("", "0"):
        return load("python"), "COREKIT_NO_EXTENSIONS is set"
    try:
        return load("cython"), None
    except ImportError as exc:
        return load("python"), f"the compiled modules are not importable: {exc}"


_impl, FALLBACK_REASON = _choose()
IMPLEMENTATION: str = _impl.IMPLEMENTATION
parse_iso8601 = _impl.parse_iso8601
TaskHeaders = _impl.TaskHeaders
decode_batch = _impl.decode_batch
EtaHeap = _impl.EtaHeap
Dispatcher = _impl.Dispatcher
del _impl

__all__ = ["IMPLEMENTATION", "FALLBACK_REASON", "load", *NAMES]
