"""The demo's tasks, on the embedded SQLite default (no server needed)."""
from __future__ import annotations

import random

from corekit import Corekit, get_task_logger

# broker and backend default to sqlite://corekit.sqlite3 in the working directory
app = Corekit("demo_tasks", accept_content=["json", "msgpack"])
logger = get_task_logger(__name__)


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def mul(x: int, y: int) -> int:
    return x * y


@app.task
def xsum(numbers: list[int]) -> int:
    return sum(numbers)


@app.task(bind=True, max_retries=5, default_retry_delay=0.2)
def flaky(self, succeed_on: int) -> str:
    """Fails until its ``succeed_on``-th run, retrying itself in between."""
    if self.request.retries + 1 < succeed_on:
        raise self.retry(exc=ConnectionError(f"attempt {self.request.retries + 1} failed"))
    return f"succeeded after {self.request.retries} retries"


@app.task(autoretry_for=(ZeroDivisionError,), max_retries=2, retry_backoff=0.1)
def divide(x: float, y: float) -> float:
    return x / y


@app.task
def roll_dice(sides: int = 6) -> int:
    value = random.randint(1, sides)
    logger.info("rolled %d", value)
    return value
