"""Snapshot cameras: take pictures of the cluster state at a steady rhythm.

``corekit events --camera myproj.cams.DumpCam --frequency 2`` builds
``DumpCam(state, freq=2.0, maxrate=None, app=app)``, calls `Polaroid.install`,
feeds the state from the event stream and, on exit, `Polaroid.cancel`.  A
camera subclasses `Polaroid` (Celery's class of the same name and contract)
and overrides:

- ``on_shutter(state)``: called every ``freq`` seconds (at most ``maxrate``,
  e.g. ``"100/m"``) with the `corekit.events.state.State`; no event is
  applied while it runs.  Store what you need (``state.tasks``,
  ``state.workers``, ``state.snapshot()``...).
- ``on_cleanup()``: called every ``cleanup_freq`` seconds (an hour), to
  prune what was stored.

Set ``clear_after = True`` to forget the finished tasks after each shutter.
"""
from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from corekit.ratelimit import TokenBucket, parse_rate

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.events.state import State

logger = logging.getLogger("corekit.events")


class Polaroid:
    """Calls `on_shutter` every *freq* seconds from a thread of its own,
    once `install` ran, until `cancel` (which takes one last picture)."""

    clear_after = False

    def __init__(self, state: State, freq: float = 1.0, maxrate: str | float | None = None,
                 cleanup_freq: float = 3600.0, app: Corekit | None = None) -> None:
        self.state = state
        self.freq = float(freq)
        self.cleanup_freq = float(cleanup_freq)
        self.app = app
        rate = parse_rate(maxrate)
        self.maxrate = TokenBucket(rate) if rate else None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def on_shutter(self, state: State) -> None:
        """Override: take the picture."""

    def on_cleanup(self) -> None:
        """Override: prune old pictures."""

    def shutter(self) -> None:
        """`on_shutter` now, unless ``maxrate`` says it is too soon."""
        if self.maxrate is None or self.maxrate.take(1)[0]:
            self.on_shutter(self.state)

    def capture(self) -> None:
        """`shutter` with the state frozen (and cleared after, with ``clear_after``)."""
        self.state.freeze_while(self.shutter, clear_after=self.clear_after)

    def cleanup(self) -> None:
        self.on_cleanup()

    def install(self) -> None:
        """Start taking pictures."""
        self._thread = threading.Thread(target=self._run, name="corekit-camera", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Stop, after one last picture of what was received."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            self._safely(self.capture)

    def _run(self) -> None:
        cleanup_every = max(1, round(self.cleanup_freq / self.freq))
        ticks = 0
        while not self._stopping.wait(self.freq):
            self._safely(self.capture)
            ticks += 1
            if ticks % cleanup_every == 0:
                self._safely(self.cleanup)

    @staticmethod
    def _safely(call: Any) -> None:
        try:
            call()
        except Exception:  # a camera that fails once must not stop taking pictures
            logger.exception("Camera %r failed", call)

    def __enter__(self) -> Polaroid:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()
