"""Celery's app signals, ``on_after_configure`` and ``on_after_finalize``.

Each is made on first use (creating an app imports no logging), and sending
one raises a configuration error that a receiver raised: a signal only logs
what its receivers raise, and a bad ``add_periodic_task`` in
``on_after_configure`` would otherwise leave its entry silently missing.
"""
from __future__ import annotations

from typing import Any

from corekit.exceptions import ImproperlyConfigured

DOCS = {"on_after_configure": "sender=app; source=app.conf",
        "on_after_finalize": "sender=app"}


class AppSignals:
    """One app's signals, by name."""

    def __init__(self) -> None:
        self._made: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        signal = self._made.get(name)
        if signal is None:
            from corekit.signals import Signal

            signal = self._made[name] = Signal(name, DOCS[name])
        return signal

    def send(self, name: str, sender: Any, **named: Any) -> None:
        if name not in self._made:  # nobody connected: nothing to do
            return
        for _, result in self._made[name].send(sender=sender, **named):
            if isinstance(result, ImproperlyConfigured):
                raise result
