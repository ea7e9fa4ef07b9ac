"""Rate limits per task type: ``rate_limit = "200/m"`` (``/s``, ``/m``, ``/h``;
a bare number is per second).

Per worker by default, as in Celery: each worker holds a token bucket per
task type and keeps a task that comes too early in its timer until a token
is free.  With ``rate_limit_global = True`` the bucket lives on the broker
(`Transport.take_tokens`, Redis and SQLite), so the limit holds for all
workers together.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corekit.transport import Transport

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate(rate: Any) -> float | None:
    """Tokens per second for ``"10/s"``, ``"200/m"``, ``"100/h"`` or a number;
    None (no limit) for None, 0 or ``""``."""
    if rate is None or rate == "" or rate == 0:
        return None
    if isinstance(rate, (int, float)):
        return float(rate) if rate > 0 else None
    text = str(rate).strip()
    count, _, unit = text.partition("/")
    try:
        per_second = float(count) / _UNITS[unit.strip().lower()[:1] or "s"]
    except (ValueError, KeyError):
        raise ValueError(f"rate limit {rate!r} is not N/s, N/m or N/h") from None
    return per_second if per_second > 0 else None


class TokenBucket:
    """*rate* tokens a second, holding at most *capacity*: full at start."""

    def __init__(self, rate: float, capacity: float = 1.0) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = time.monotonic()

    def take(self, wanted: int, now: float | None = None) -> tuple[int, float]:
        """Take up to *wanted* tokens: ``(granted, seconds until the next)``."""
        now = time.monotonic() if now is None else now
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        granted = min(wanted, int(self.tokens))
        self.tokens -= granted
        return granted, max(0.0, (1.0 - self.tokens) / self.rate)


class BrokerBucket:
    """The same bucket, kept on the broker for every worker to share."""

    def __init__(self, transport: Transport, key: str, rate: float,
                 capacity: float = 1.0) -> None:
        if "rate_limit" not in transport.capabilities:
            raise ValueError(f"global rate limits need a broker that keeps them "
                             f"(a transport with the rate_limit capability), "
                             f"not {transport.scheme}://")
        self.transport = transport
        self.key = key
        self.rate = rate
        self.capacity = capacity

    def take(self, wanted: int, now: float | None = None) -> tuple[int, float]:
        return self.transport.take_tokens(self.key, self.rate, self.capacity, wanted)
