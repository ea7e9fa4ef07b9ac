"""Tasks for the canvas tour (docs/guide/canvas.md)."""
from __future__ import annotations

from corekit import Corekit

app = Corekit("canvas_tasks")  # sqlite://corekit.sqlite3 in the working directory


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def mul(x: int, y: int) -> int:
    return x * y


@app.task
def xsum(numbers: list[int]) -> int:
    return sum(numbers)


@app.task
def tsum(numbers: list[int]) -> int:
    return sum(numbers)


@app.task
def fail(reason: str) -> None:
    raise ValueError(reason)


@app.task
def log_error(request, exc, traceback) -> None:  # noqa: ANN001 - Celery's errback form
    print(f"errback: task {request.id[:8]} raised {exc!r}")


@app.task(bind=True)
def double_later(self, x: int) -> int:  # noqa: ANN001
    raise self.replace(mul.s(x, 2))  # mul's result becomes this task's
