"""Testing your own tasks: pytest fixtures and an in-process worker.

Installed as a pytest plugin, so these fixtures are there in any project
that has corekit installed:

- ``corekit_config``: override it to return settings for ``corekit_app``.
- ``corekit_app``: an app on a private in-memory broker and result backend.
- ``corekit_worker``: a worker running ``corekit_app``'s tasks in a thread.
- ``corekit_eager_app``: ``corekit_app`` with ``task_always_eager`` on, so
  ``delay()`` runs the task at once and errors propagate.

`start_worker(app)` does what ``corekit_worker`` does for any app.
"""
from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import pytest

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.worker import Worker


@contextmanager
def start_worker(app: Corekit, *, pool: str = "threads", concurrency: int = 1,
                 queues: Sequence[str] | None = None, ready_timeout: float = 30.0,
                 **options: Any) -> Iterator[Worker]:
    """Run a worker for *app* in a thread for the ``with`` block; it shuts
    down warmly (running tasks finish) when the block ends."""
    worker = app.Worker(pool=pool, concurrency=concurrency, queues=queues,
                        hostname=options.pop("hostname", f"testworker-{uuid.uuid4().hex[:6]}@%h"),
                        **options)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.start()
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
            worker.ready.set()

    thread = threading.Thread(target=run, name="corekit-test-worker", daemon=True)
    thread.start()
    worker.ready.wait(ready_timeout)
    if errors:
        raise RuntimeError(f"the test worker failed to start: {errors[0]!r}") from errors[0]
    if not worker.ready.is_set():
        raise RuntimeError(f"the test worker was not ready within {ready_timeout}s")
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(ready_timeout)


@pytest.fixture
def corekit_config() -> dict[str, Any]:
    """Settings for ``corekit_app``; override this fixture to change them."""
    return {}


@pytest.fixture
def corekit_app(corekit_config: dict[str, Any]) -> Iterator[Corekit]:
    from corekit.app import Corekit

    name = uuid.uuid4().hex
    config = {"broker_url": f"memory://{name}", "result_backend": f"memory://{name}",
              **corekit_config}
    app = Corekit("corekit.testing", **config)
    yield app
    app.close()


@pytest.fixture
def corekit_worker(corekit_app: Corekit) -> Iterator[Worker]:
    with start_worker(corekit_app) as worker:
        yield worker


@pytest.fixture
def corekit_eager_app(corekit_app: Corekit) -> Corekit:
    corekit_app.conf.task_always_eager = True
    corekit_app.conf.task_eager_propagates = True
    return corekit_app
