"""The hot path; compiled modules when built, pure-Python twins otherwise."""
from __future__ import annotations

import os

from corekit._speedups.decode import TaskHeaders, decode_batch, parse_iso8601
from corekit._speedups.dispatch import Dispatcher
from corekit._speedups.etaheap import EtaHeap

IMPLEMENTATION = "python"
__all__ = ["IMPLEMENTATION", "TaskHeaders", "decode_batch", "parse_iso8601", "Dispatcher",
           "EtaHeap"]
