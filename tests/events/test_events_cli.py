"""``corekit events``: the dump, the snapshot camera and the live view
(its model with a real worker, and the curses screen in a pseudo-terminal),
each as a user runs it against a live worker."""
from __future__ import annotations

import curses
import fcntl
import os
import pty
import queue
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from corekit import Corekit, TaskRevokedError
from corekit.events.dumper import Dumper
from corekit.events.snapshot import Polaroid
from corekit.events.state import State
from corekit.events.top import TopView
from corekit.testing import start_worker
from helpers import ROOT
from event_log import EventLog

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def wait_until(predicate: Callable[[], Any], timeout: float = 15, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what or predicate}"
        time.sleep(0.02)


def project(tmp_path: Path, broker: str) -> Corekit:
    """proj.py in *tmp_path* for the command line, and the same app here."""
    (tmp_path / "proj.py").write_text(
        "from corekit import Corekit\n"
        f"app = Corekit('proj', broker={broker!r}, backend={broker!r})\n")
    return Corekit("proj", broker=broker, backend=broker, broker_heartbeat=0.2,
                   broker_lease_timeout=2.0)


def cli_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}


class Lines:
    """A subprocess's stdout, line by line, read on a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=lambda: [self.lines.put(line) for line in stdout],
                         daemon=True).start()

    def until(self, pattern: str, timeout: float = 15) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} in {seen}") from None
            seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match


@pytest.fixture
def events_cli(tmp_path: Path) -> Iterator[Callable[..., Lines]]:
    """Start ``corekit -A proj events ARGS``; interrupted (Ctrl-C) at the end,
    which must end it cleanly."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> Lines:
        proc = subprocess.Popen([sys.executable, "-m", "corekit", "-A", "proj", "events",
                                 *args], cwd=tmp_path, env=cli_env(tmp_path),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        return Lines(proc)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0, proc.stderr.read() if proc.stderr else ""


@pytest.mark.parametrize("broker", ["sqlite", "redis"])
def test_dump_prints_each_event_on_a_line(broker: str, tmp_path: Path,
                                          request: pytest.FixtureRequest,
                                          events_cli: Callable[..., Lines]) -> None:
    url = (f"sqlite://{tmp_path / 'broker.sqlite3'}" if broker == "sqlite"
           else request.getfixturevalue("redis_url"))
    app = project(tmp_path, url)

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    out = events_cli("--dump")
    out.until(r"^-> corekit events: dumping events")
    with start_worker(app, task_events=True) as worker:
        host = re.escape(worker.hostname)
        out.until(rf"^{host} \[\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{{6}}\] started: "
                  rf"active=0 freq=2.0 ")
        result = add.delay(2, 2)
        assert result.get(timeout=15) == 4
        stamp = r"\[[-0-9: .]+\]"
        out.until(rf"^{host} {stamp} task received: proj\.add\({result.id}\) args=\[2, 2\] ")
        out.until(rf"^{host} {stamp} task started: proj\.add\({result.id}\)$")
        out.until(rf"^{host} {stamp} task succeeded: proj\.add\({result.id}\) result=4 "
                  rf"runtime=[0-9.e-]+$")
    out.until(rf"^{host} {stamp} shutdown: ")


def test_dumper_lines() -> None:
    lines: list[str] = []
    dumper = Dumper()
    dumper.say = lines.append  # type: ignore[method-assign]
    dumper.on_event({"type": "task-received", "hostname": "w@h", "timestamp": 0.5,
                     "uuid": "id1", "name": "proj.add", "args": "[1]", "kwargs": "{}",
                     "clock": 3, "pid": 9, "utcoffset": 0, "local_received": 1.0})
    dumper.on_event({"type": "task-failed", "hostname": "w@h", "timestamp": 1.0,
                     "uuid": "id1", "exception": "E()"})
    dumper.on_event({"type": "task-started", "hostname": "w@h", "timestamp": 1.0,
                     "uuid": "never-received"})
    dumper.on_event({"type": "custom-thing", "hostname": "w@h", "timestamp": 1.0})
    assert lines == [
        "w@h [1970-01-01 00:00:00.500000] task received: proj.add(id1) args=[1] kwargs={}",
        "w@h [1970-01-01 00:00:01.000000] task failed: proj.add(id1) exception=E()",
        "w@h [1970-01-01 00:00:01.000000] task started: (never-received)",
        "w@h [1970-01-01 00:00:01.000000] custom thing"]


CAMERA = '''
import json
from corekit.events.snapshot import Polaroid

class Recorder(Polaroid):
    """Writes what it sees on each shutter: one JSON line."""
    def on_shutter(self, state):
        with open("shots.jsonl", "a") as f:
            f.write(json.dumps({"tasks": {t.uuid: t.state for t in state.tasks.values()},
                                "workers": sorted(state.workers), "freq": self.freq}) + "\\n")
'''


def test_the_camera_takes_snapshots_of_the_state(tmp_path: Path,
                                                 events_cli: Callable[..., Lines]) -> None:
    import json

    app = project(tmp_path, f"sqlite://{tmp_path / 'broker.sqlite3'}")
    (tmp_path / "cams.py").write_text(CAMERA)

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    shots = tmp_path / "shots.jsonl"
    out = events_cli("--camera", "cams.Recorder", "--frequency", "0.2")
    out.until(r"^-> corekit events: taking snapshots with cams\.Recorder \(every 0\.2 s\)")
    with start_worker(app, task_events=True) as worker:
        result = add.delay(1, 2)
        result.get(timeout=15)

        def seen() -> bool:
            lines = shots.read_text().splitlines() if shots.exists() else []
            return any(json.loads(line)["tasks"].get(result.id) == "SUCCESS"
                       and worker.hostname in json.loads(line)["workers"] for line in lines)

        wait_until(seen, what="a snapshot with the task")
    assert json.loads(shots.read_text().splitlines()[0])["freq"] == 0.2
    pictures = len(shots.read_text().splitlines())
    out.proc.send_signal(signal.SIGTERM)  # a supervisor's stop: clean, one last picture
    assert out.proc.wait(15) == 0
    assert len(shots.read_text().splitlines()) > pictures


def test_a_bad_camera_is_refused_clearly(tmp_path: Path) -> None:
    project(tmp_path, f"sqlite://{tmp_path / 'broker.sqlite3'}")
    (tmp_path / "notcam.py").write_text("class Plain:\n    def __init__(self, *a, **k): pass\n")
    for path, message in (("nosuch.Camera", "cannot load camera 'nosuch.Camera'"),
                          ("notcam.Plain", "notcam.Plain is not a camera"),
                          ("Camera", "is not module.Class")):
        out = subprocess.run([sys.executable, "-m", "corekit", "-A", "proj", "events",
                              "--camera", path], cwd=tmp_path, env=cli_env(tmp_path),
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 1 and message in out.stderr, out.stderr


def test_polaroid_rhythm_maxrate_and_last_picture() -> None:
    pictures: list[float] = []

    class Counting(Polaroid):
        def on_shutter(self, state: State) -> None:
            pictures.append(time.monotonic())

    with Counting(State(), freq=0.02):
        wait_until(lambda: len(pictures) >= 5)
    count = len(pictures)
    assert count >= 6  # cancel took one last picture
    pictures.clear()
    limited = Counting(State(), freq=0.01, maxrate="2/s")
    limited.install()
    time.sleep(1.0)
    limited.cancel()
    assert 1 <= len(pictures) <= 4  # about 2 a second, not 100


# -- the live view ------------------------------------------------------------------------
def blocked_worker_tasks(app: Corekit) -> tuple[Any, Any, threading.Event]:
    gate = threading.Event()

    @app.task(name="proj.block")
    def block() -> str:
        gate.wait(30)
        return "unblocked"

    @app.task(name="proj.note")
    def note(word: str) -> str:
        return word

    return block, note, gate


def test_the_view_shows_the_cluster_and_acts_on_the_selected_task(tmp_path: Path) -> None:
    app = project(tmp_path, f"sqlite://{tmp_path / 'broker.sqlite3'}")
    block, note, gate = blocked_worker_tasks(app)
    state = State()
    view = TopView(app, state)
    with EventLog(app, handler=state.event), \
            start_worker(app, task_events=True, heartbeat_interval=0.2) as worker:
        blocker = block.delay()
        wait_until(lambda: blocker.id in worker.consumer.running)
        queued = note.delay("queued")
        wait_until(lambda: queued.id in state.tasks and blocker.id in state.tasks
                   and state.tasks[blocker.id].state == "STARTED" and state.alive_workers())
        screen, chosen = view.render(120, 30)
        text = "\n".join(screen)
        assert "1 worker(s) online" in text and worker.hostname in text and "ONLINE" in text
        rows = [line for line in screen if re.match(UUID, line)]
        assert rows[0].startswith(queued.id) and "proj.note" in rows[0] and "RECEIVED" in rows[0]
        assert rows[1].startswith(blocker.id) and "STARTED" in rows[1]
        assert chosen is not None and screen[chosen] == rows[0]  # the newest is selected
        assert all(len(line) < 120 for line in screen) and len(screen) <= 30
        # down selects the blocker, up the queued task again; r revokes it
        view.handle_key(curses.KEY_DOWN)
        assert view.selected_task() is not None and view.selected_task().uuid == blocker.id
        assert view.render(120, 30)[1] == chosen + 1
        view.handle_key(curses.KEY_UP)
        view.handle_key(ord("r"))
        wait_until(lambda: worker.consumer.revoked.reason(queued.id, {}) is not None)
        wait_until(lambda: "1 worker(s) replied" in view.footer())
        # l asks for a rate, then sets it for the selected task's type
        view.handle_key(ord("l"))
        for key in "9/x":
            view.handle_key(ord(key))
        assert "rate limit for proj.note (e.g. 10/s): 9/x" in view.footer()
        view.handle_key(10)
        assert "is not N/s" in view.footer() and app.tasks["proj.note"].rate_limit is None
        view.handle_key(ord("l"))
        for key in "9/x":
            view.handle_key(ord(key))
        view.handle_key(curses.KEY_BACKSPACE)
        for key in "m\n":
            view.handle_key(ord(key))
        wait_until(lambda: app.tasks["proj.note"].rate_limit == "9/m")
        gate.set()
        assert blocker.get(timeout=15) == "unblocked"
        with pytest.raises(TaskRevokedError):
            queued.get(timeout=15)
        wait_until(lambda: state.tasks[blocker.id].state == "SUCCESS")
        rows = [line for line in view.render(120, 30)[0] if re.match(UUID, line)]
        assert any(line.startswith(blocker.id) and "SUCCESS" in line and "s  " in line
                   for line in rows)
    assert view.handle_key(ord("q")) is False


def read_screen(fd: int, sink: list[bytes]) -> None:
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            return
        if not data:
            return
        sink.append(data)


def screen_text(sink: list[bytes]) -> str:
    raw = b"".join(sink).decode("utf-8", "replace")
    return re.sub(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[=>]|O.)", " ", raw)


def test_the_curses_view_in_a_terminal(tmp_path: Path) -> None:
    """The real screen in a pseudo-terminal: a task shows up, arrows move
    the selection, r revokes the selected task, q quits."""
    app = project(tmp_path, f"sqlite://{tmp_path / 'broker.sqlite3'}")
    block, note, gate = blocked_worker_tasks(app)
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    env = {**cli_env(tmp_path), "TERM": "xterm", "LINES": "40", "COLUMNS": "140"}
    with start_worker(app, task_events=True) as worker:
        proc = subprocess.Popen([sys.executable, "-m", "corekit", "-A", "proj", "events"],
                                cwd=tmp_path, env=env, stdin=slave, stdout=slave,
                                stderr=slave, start_new_session=True)
        os.close(slave)
        sink: list[bytes] = []
        threading.Thread(target=read_screen, args=(master, sink), daemon=True).start()
        try:
            wait_until(lambda: "corekit events:" in screen_text(sink), what="the screen")
            blocker = block.delay()
            wait_until(lambda: blocker.id in worker.consumer.running)
            wait_until(lambda: blocker.id in screen_text(sink), what="the blocker on screen")
            queued = note.delay("queued")
            # on screen: both rows were drawn, the queued task first (the newest)
            wait_until(lambda: queued.id in screen_text(sink), what="the queued task on screen")
            os.write(master, b"\x1bOB")  # down: the blocker (second row) is selected
            os.write(master, b"r")
            wait_until(lambda: worker.consumer.revoked.reason(blocker.id, {}) is not None)
            assert worker.consumer.revoked.reason(queued.id, {}) is None
            os.write(master, b"\x1bOA")  # up: the queued task again
            os.write(master, b"r")
            wait_until(lambda: worker.consumer.revoked.reason(queued.id, {}) is not None)
            os.write(master, b"q")
            assert proc.wait(15) == 0
        finally:
            gate.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)
        with pytest.raises(TaskRevokedError):
            queued.get(timeout=15)
    assert "proj.note" in screen_text(sink) and "up/down select" in screen_text(sink)


@pytest.mark.parametrize("args", [["--frequency", "0"], ["--dump", "--camera", "cams.X"],
                                  ["--loglevel", "loud"]])
def test_bad_flags_print_usage_and_exit_2(args: list[str]) -> None:
    out = subprocess.run([sys.executable, "-m", "corekit", "events", *args],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "usage: corekit events" in out.stderr


def test_the_view_needs_a_terminal(tmp_path: Path) -> None:
    project(tmp_path, f"sqlite://{tmp_path / 'broker.sqlite3'}")
    out = subprocess.run([sys.executable, "-m", "corekit", "-A", "proj", "events"],
                         cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True,
                         timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 1 and "needs a terminal: use --dump" in out.stderr


def test_the_view_says_it_is_connecting_until_its_receiver_listens(tmp_path: Path) -> None:
    """The header the user reads as "listening" (and the terminal test waits
    for before sending) is drawn only once the receiver is subscribed."""
    app = project(tmp_path, "redis://:secret@127.0.0.1:1/0")
    listening = threading.Event()
    view = TopView(app, State(), listening)
    header = view.render(120, 30)[0][0]
    assert header == "connecting to redis://:**@127.0.0.1:1/0 for events..."
    listening.set()
    assert view.render(120, 30)[0][0].startswith("corekit events: 0 worker(s) online")
