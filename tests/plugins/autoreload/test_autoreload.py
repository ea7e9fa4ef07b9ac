"""``corekit worker --autoreload``: a saved task module restarts the worker
in place (same pid, new code); a module that does not compile is logged
and the old code keeps running; the watcher itself, without a worker."""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from corekit import Corekit
from corekit.plugins.autoreload import watcher as autoreload
from corekit.plugins.autoreload.step import restart
from service_helpers import WorkerProcess

pytest.importorskip("watchfiles", reason="the autoreload extra (in the test extra) is missing")

PROJ = '''
from corekit import Corekit
app = Corekit("proj")
import tasks  # noqa: E402,F401
'''
TASKS = '''
import os
from proj import app

@app.task
def version():
    return [{version}, os.getpid()]
'''
RESTARTING = r"autoreload: tasks\.py changed, restarting"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "proj.py").write_text(PROJ)
    (tmp_path / "tasks.py").write_text(TASKS.format(version=1))
    return tmp_path


def save(path: Path, text: str) -> None:
    """Write as an editor does: a new file renamed over the old one."""
    new = path.with_suffix(".tmp~")
    new.write_text(text)
    os.replace(new, path)


def test_a_saved_task_module_restarts_the_worker_in_place(project: Path) -> None:
    broker = f"sqlite://{project / 'broker.db'}"
    app = Corekit("client", broker=broker, result_backend=broker)
    worker = WorkerProcess(project, "-A", "proj", "-b", broker, "worker", "-P", "threads",
                           "-c", "1", "-n", "dev@box", "--no-banner", "-l", "info",
                           "--autoreload")
    try:
        worker.wait_for(r"autoreload: watching proj\.py, tasks\.py")
        worker.wait_for(r"ready\.")
        assert app.send_task("tasks.version").get(timeout=20) == [1, worker.pid]

        save(project / "tasks.py", TASKS.format(version=2))
        worker.wait_for(RESTARTING)
        worker.wait_for(r"ready\.")
        assert app.send_task("tasks.version").get(timeout=20) == [2, worker.pid]

        # a syntax error: logged, no restart; the old code keeps running
        save(project / "tasks.py", TASKS.format(version=3) + "\ndef broken(:\n")
        line = worker.wait_for("autoreload: tasks.py changed but does not compile")
        assert "ERROR" in line and "SyntaxError at line 9" in line
        assert app.send_task("tasks.version").get(timeout=20) == [2, worker.pid]

        save(project / "tasks.py", TASKS.format(version=4))  # fixed: restarts
        worker.wait_for(RESTARTING)
        worker.wait_for(r"ready\.")
        assert app.send_task("tasks.version").get(timeout=20) == [4, worker.pid]
        assert worker.output.count("restarting in place") == 2
    finally:
        assert worker.stop() == 0, worker.output


def test_without_watchfiles_the_flag_is_a_clear_error(project: Path) -> None:
    (project / "watchfiles.py").write_text("raise ImportError('not installed here')\n")
    worker = WorkerProcess(project, "-A", "proj", "-b", f"sqlite://{project / 'b.db'}",
                           "worker", "--autoreload")
    assert worker.finish() == 1
    assert worker.output == ("Error: --autoreload (worker_autoreload) needs the watchfiles "
                             "library, which is not installed: pip install "
                             "'corekit[autoreload]'\n")


def test_a_pool_that_patches_the_interpreter_is_refused(project: Path) -> None:
    from corekit.pluginmanager import default_manager

    patching = sorted(default_manager().registry("early_patches"))
    if not patching:
        pytest.skip("no installed pool patches the interpreter")
    worker = WorkerProcess(project, "-A", "proj", "-b", f"sqlite://{project / 'b.db'}",
                           "worker", "-P", patching[0], "--autoreload")
    assert worker.finish() == 1
    assert worker.output == (f"Error: --autoreload (worker_autoreload) does not work with the "
                             f"{patching[0]} pool: it patches the interpreter, and the file "
                             f"watcher would block its green threads; use another pool "
                             f"during development\n")


# -- the watcher alone ---------------------------------------------------------------
@pytest.fixture
def watched(tmp_path: Path) -> Iterator[Any]:
    made: list[autoreload.Watcher] = []

    def watch(*files: Path) -> tuple[autoreload.Watcher, list[float]]:
        calls: list[float] = []
        done = threading.Event()

        def fake_restart() -> bool:
            calls.append(time.monotonic())
            done.set()
            return True

        w = autoreload.Watcher([str(f.resolve()) for f in files], fake_restart)
        w.done = done
        w.start()
        time.sleep(0.3)  # its inotify watch in place (watchfiles says not when)
        made.append(w)
        return w, calls

    yield watch
    for w in made:
        w.stop()


def test_a_burst_of_writes_is_one_restart(tmp_path: Path, watched: Any,
                                          caplog: pytest.LogCaptureFixture) -> None:
    module, other = tmp_path / "mod.py", tmp_path / "other.py"
    module.write_text("x = 1\n")
    other.write_text("y = 1\n")
    w, calls = watched(module)
    caplog.set_level(logging.WARNING, "corekit.autoreload")
    other.write_text("y = 2\n")  # not watched
    for n in range(5):
        module.write_text(f"x = {n}\n")
        time.sleep(0.02)
    assert w.done.wait(10)
    w.thread.join(5)  # it stops watching once it asked for a restart
    assert len(calls) == 1 and not w.thread.is_alive()
    shown = autoreload._short(str(module.resolve()))
    assert [r.getMessage() for r in caplog.records] == [f"autoreload: {shown} changed, "
                                                        "restarting"]


def test_a_module_that_does_not_compile_is_logged_and_watched_again(
        tmp_path: Path, watched: Any, caplog: pytest.LogCaptureFixture) -> None:
    module = tmp_path / "mod.py"
    module.write_text("x = 1\n")
    w, calls = watched(module)
    caplog.set_level(logging.WARNING, "corekit.autoreload")
    module.write_text("x = (\n")
    deadline = time.monotonic() + 10
    while not any("does not compile" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, caplog.text
        time.sleep(0.05)
    assert calls == [] and w.thread.is_alive()
    assert "SyntaxError at line 1" in caplog.text
    module.write_text("x = 2\n")
    assert w.done.wait(10) and len(calls) == 1


def test_the_files_are_the_task_modules_under_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "near_tasks.py").write_text(
        "from corekit import Corekit\napp = Corekit('near')\n"
        "@app.task\ndef t():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import near_tasks  # type: ignore[import-not-found]

    try:
        app = near_tasks.app
        from corekit.plugins.autoreload.watcher import source_files

        assert source_files(app, str(tmp_path)) == [str((tmp_path / "near_tasks.py").resolve())]
        # a built-in task's module (corekit's own) is never watched; nor, from
        # another folder, anything at all
        assert source_files(app, str(tmp_path / "elsewhere")) == []
    finally:
        sys.modules.pop("near_tasks", None)


def test_syntax_error_reasons() -> None:
    assert autoreload.syntax_error(__file__) is None
    assert autoreload.syntax_error("/no/such/file.py").startswith("FileNotFoundError")


def test_restart_refuses_when_sighup_would_kill_the_process() -> None:
    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        assert restart() is False
    finally:
        signal.signal(signal.SIGHUP, previous)
