"""The lifecycle hooks a plugin implements (``corekit_app_configure``,
``corekit_worker_ready``, ``corekit_worker_shutdown``): each called once, at
its documented moment, with its documented argument.

Plugins here are registered through `PluginManager.register`, as an entry
point would register them; tests/test_third_party_plugin.py does the same
from an installed package in real ``corekit`` processes."""
from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from corekit import Corekit
from corekit.hookspecs import hookimpl
from corekit.testing import start_worker
from plugin_hooks_helpers import manager_with


class Lifecycle:
    """Records each lifecycle call with what it could see at that moment."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    @hookimpl
    def corekit_app_configure(self, app: Corekit) -> None:
        self.calls.append(("configure", app, {
            "include imported": "tests_lifecycle_tasks" in sys.modules,
            "conf": app.conf.task_default_queue}))

    @hookimpl
    def corekit_worker_ready(self, worker: Any) -> None:
        self.calls.append(("ready", worker, {
            "steps": worker.blueprint.state, "ready event": worker.ready.is_set(),
            "thread": threading.current_thread().name}))

    @hookimpl
    def corekit_worker_shutdown(self, worker: Any) -> None:
        self.calls.append(("shutdown", worker, {
            "steps": worker.blueprint.state,
            "consuming": not worker.consumer.stopping.is_set()
            if hasattr(worker.consumer, "stopping") else None}))

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]


def test_app_configure_is_called_once_at_finalize_before_include_imports(
        make_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tests_lifecycle_tasks.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tests_lifecycle_tasks", raising=False)
    seen = Lifecycle()
    app = make_app(manager_with(("lifecycle", seen)), include=["tests_lifecycle_tasks"],
                   task_default_queue="configured")
    assert seen.calls == []  # creating the app is not finalizing it
    app.finalize()
    app.finalize()
    _ = app.tasks
    assert seen.calls == [("configure", app, {"include imported": False,
                                              "conf": "configured"})]
    assert "tests_lifecycle_tasks" in sys.modules


def test_worker_ready_and_shutdown_are_called_once_each_at_their_moment(
        make_app: Any) -> None:
    seen = Lifecycle()
    app = make_app(manager_with(("lifecycle", seen)))
    with start_worker(app) as worker:
        assert seen.names() == ["configure", "ready"]
    assert seen.names() == ["configure", "ready", "shutdown"]
    _, ready_worker, at_ready = seen.calls[1]
    assert ready_worker is worker
    assert at_ready == {"steps": "running", "ready event": False,
                        "thread": "corekit-test-worker"}
    _, stopping_worker, at_shutdown = seen.calls[2]
    assert stopping_worker is worker and at_shutdown["steps"] == "running"
    assert worker.blueprint.state == "stopped"


def test_no_lifecycle_call_for_a_worker_that_never_started(make_app: Any) -> None:
    seen = Lifecycle()
    app = make_app(manager_with(("lifecycle", seen)))
    app.Worker(pool="threads").setup()
    assert seen.names() == ["configure"]


def test_the_unusable_worker_start_hook_is_gone() -> None:
    from corekit import hookspecs

    assert not hasattr(hookspecs, "corekit_worker_start")
