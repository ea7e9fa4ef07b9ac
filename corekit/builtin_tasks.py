"""The tasks the canvas sends, under Celery's names (``celery.map``,
``celery.starmap``, ``celery.chunks``, ``celery.accumulate``).

Every app registers them when it is made, so this module imports nothing
but the app's own: the canvas is imported when one of them runs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corekit.app import Corekit


def register_builtins(app: Corekit) -> None:
    """Register the built-in tasks on *app*."""

    @app.task(name="celery.backend_cleanup", bind=True, ignore_result=True)
    def backend_cleanup(self: Any) -> int:
        """Delete expired results (Celery's name): for a result backend that
        does not expire them by itself, put it in ``beat_schedule``."""
        return self.app.backend.cleanup()

    @app.task(name="celery.map", bind=True)
    def map_task(self: Any, task: Any, it: list[Any]) -> list[Any]:
        from corekit.canvas import signature

        fun = signature(task, app=self.app).type
        return [fun(item) for item in it]

    @app.task(name="celery.starmap", bind=True)
    def starmap_task(self: Any, task: Any, it: list[Any]) -> list[Any]:
        from corekit.canvas import signature

        fun = signature(task, app=self.app).type
        return [fun(*item) for item in it]

    @app.task(name="celery.chunks", bind=True)
    def chunks_task(self: Any, task: Any, it: list[Any], n: int) -> Any:
        from corekit.canvas import chunks, signature

        return chunks(signature(task, app=self.app), it, n, app=self.app).apply_async().id

    @app.task(name="celery.accumulate")
    def accumulate(*args: Any, index: int | None = None) -> Any:
        return args[index] if index is not None else (args[0] if len(args) == 1 else args)
