"""What a worker must not run: revoked task ids and stamped headers."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Mapping

#: Revoked ids a worker remembers (the oldest are forgotten first).
MAX_REVOKED = 50_000


class Revoked:
    """Revocations known to this worker, fed by the control step (from the
    result backend at start, then live broadcasts) and read by the consumer."""

    def __init__(self, expires: float = 10800.0) -> None:
        self.expires = expires
        self._ids: OrderedDict[str, float] = OrderedDict()
        self._headers: list[tuple[dict[str, Any], float]] = []
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._ids or self._headers)

    def add(self, entry: Mapping[str, Any]) -> None:
        at = float(entry.get("at") or time.time())
        with self._lock:
            if entry.get("task_id"):
                ids = entry["task_id"]
                for task_id in [ids] if isinstance(ids, str) else ids:
                    self._ids[task_id] = at
                    self._ids.move_to_end(task_id)
                while len(self._ids) > MAX_REVOKED:
                    self._ids.popitem(last=False)
            if entry.get("headers"):
                self._headers.append((dict(entry["headers"]), at))
            oldest = time.time() - self.expires
            self._headers = [(h, t) for h, t in self._headers if t >= oldest]

    def ids(self) -> list[str]:
        """The revoked task ids, oldest first."""
        with self._lock:
            return list(self._ids)

    def reason(self, task_id: str, headers: Mapping[str, Any]) -> str | None:
        """Why a task must not run (``"revoked"``), or None."""
        if task_id in self._ids:
            return "revoked"
        for wanted, _ in self._headers:
            if all(_matches(headers.get(key), value) for key, value in wanted.items()):
                return "revoked"
        return None


def _matches(have: Any, wanted: Any) -> bool:
    if have is None:
        return False
    options = wanted if isinstance(wanted, (list, tuple, set)) else [wanted]
    values = have if isinstance(have, (list, tuple)) else [have]
    return any(v in options for v in values)
