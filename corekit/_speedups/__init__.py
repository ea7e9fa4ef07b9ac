"""The worker's hot path: compiled modules with pure-Python twins.

The compiled modules (``_decode``, ``_etaheap``, ``_dispatch``) are used when
they are built, unless ``COREKIT_NO_EXTENSIONS`` is set; `IMPLEMENTATION`
says which ("cython" or "python").  `load` gives either set by name, so tests
and benchmarks can run both side by side.
"""
from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

NAMES = ("parse_iso8601", "TaskHeaders", "decode_batch", "EtaHeap", "Dispatcher")


def load(implementation: str) -> Any:
    """The five hot-path names from ``"cython"`` or ``"python"``."""
    if implementation == "cython":
        from corekit._speedups import _decode, _dispatch, _etaheap
    elif implementation == "python":
        from corekit._speedups import decode as _decode
        from corekit._speedups import dispatch as _dispatch
        from corekit._speedups import etaheap as _etaheap
    else:
        raise ValueError(f"unknown implementation {implementation!r}")
    return SimpleNamespace(
        implementation=implementation, parse_iso8601=_decode.parse_iso8601,
        TaskHeaders=_decode.TaskHeaders, decode_batch=_decode.decode_batch,
        EtaHeap=_etaheap.EtaHeap, Dispatcher=_dispatch.Dispatcher)


def _choose() -> Any:
    if os.environ.get("COREKIT_NO_EXTENSIONS", "") not in ("", "0"):
        return load("python")
    try:
        return load("cython")
    except ImportError:
        return load("python")


_impl = _choose()
IMPLEMENTATION: str = _impl.implementation
parse_iso8601 = _impl.parse_iso8601
TaskHeaders = _impl.TaskHeaders
decode_batch = _impl.decode_batch
EtaHeap = _impl.EtaHeap
Dispatcher = _impl.Dispatcher

__all__ = ["IMPLEMENTATION", "load", *NAMES]
