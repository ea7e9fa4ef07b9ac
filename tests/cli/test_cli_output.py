"""What the command line prints of strings others chose (a producer's task
name, a dead letter's reason, a worker's name, a stored result): what a
terminal would act on (ESC sequences, BEL, C1 controls, bidi overrides,
line breaks) is shown escaped, never sent to the terminal."""
from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from corekit import Corekit, states
from corekit.cli.output import printable
from corekit.events.dispatcher import EventDispatcher
from corekit.testing import start_worker
from corekit.messages import Message
from helpers import ROOT, run_cli

CLEAR = "\x1b[2J"            # erase the screen
TITLE = "\x1b]0;pwned\x07"   # set the window title (OSC ... BEL)
CSI = "\x9b31m"              # C1 CSI: red, on terminals that take 8-bit controls
RLO = "\u202e"               # right-to-left override
HOSTILE = f"proj.{CLEAR}add{TITLE}{CSI}{RLO}\rx\x7f"
TERMINAL_CONTROLS = ("\x1b", "\x07", "\x9b", "\u202e", "\r", "\x7f")


def assert_inert(text: str) -> None:
    for char in TERMINAL_CONTROLS:
        assert char not in text, (char, text)


def test_printable_escapes_only_what_a_terminal_acts_on() -> None:
    assert printable(HOSTILE) == "proj.\\x1b[2Jadd\\x1b]0;pwned\\x07\\x9b31m\\u202e\\rx\\x7f"
    assert printable("a\tb\nc") == "a\\tb\\nc"
    assert printable("line one\nline two\x1b[2J", newlines=True) == \
        "line one\nline two\\x1b[2J"
    untouched = "C:\\path ünïcödé 任务 ✓ \u00a0"
    assert printable(untouched) == untouched


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    out = run_cli("-A", "proj", *args, cwd=cwd,
                  env={"PYTHONPATH": os.pathsep.join([str(cwd), str(ROOT)])})
    return out


def project(tmp_path: Path, url: str) -> Corekit:
    (tmp_path / "proj.py").write_text(
        f"from corekit import Corekit\napp = Corekit('proj', broker={url!r}, backend={url!r})\n")
    return Corekit("proj", broker=url, backend=url, broker_heartbeat=0.2,
                   broker_lease_timeout=2.0)


@pytest.fixture(params=["sqlite", "redis"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Corekit]:
    url = (f"sqlite://{tmp_path / 'broker.sqlite3'}" if request.param == "sqlite"
           else request.getfixturevalue("redis_url"))
    app = project(tmp_path, url)
    yield app
    app.close()


def test_dlq_list_escapes_a_hostile_dead_letter(app: Corekit, tmp_path: Path) -> None:
    transport = app.connection()
    queue_name = f"q{CLEAR}"
    try:
        transport.publish([Message(body=b"[[], {}, {}]", headers={
            "task": HOSTILE, "id": f"id{TITLE}", "lang": "py"}, properties={},
            content_type="application/json", queue=queue_name)])
        [message] = transport.fetch([queue_name], 1, 5.0)
        transport.dead_letter(message, f"unknown task {HOSTILE!s}\nsecond line{CSI}")
    finally:
        transport.close()
    out = cli(tmp_path, "dlq", "list")
    assert out.returncode == 0, out.stderr
    assert_inert(out.stdout)
    [line] = out.stdout.splitlines()
    assert printable(HOSTILE) in line and "\\nsecond line\\x9b31m" in line
    assert "q\\x1b[2J" in line and "id\\x1b]0;pwned\\x07" in line


def test_result_escapes_a_hostile_state_result_and_traceback(tmp_path: Path) -> None:
    app = project(tmp_path, f"sqlite://{tmp_path / 'broker.sqlite3'}")
    backend = app.backend
    backend.store_result("t-state", None, f"PENDING{CLEAR}")
    backend.store_result("t-failed", ValueError(HOSTILE), states.FAILURE,
                         traceback=f"Traceback (most recent call last):\n  {TITLE}\n"
                                   f"ValueError: {HOSTILE}\n")
    app.close()
    out = cli(tmp_path, "result", "t-state")
    assert_inert(out.stdout)
    assert out.stdout.strip() == "PENDING\\x1b[2J"
    out = cli(tmp_path, "result", "t-failed")
    assert out.returncode == 1
    assert_inert(out.stdout)
    out = cli(tmp_path, "result", "t-failed", "--traceback")
    assert_inert(out.stdout)
    assert out.stdout.splitlines()[:2] == ["Traceback (most recent call last):",
                                           "  \\x1b]0;pwned\\x07"]


def test_inspect_and_status_escape_worker_names_and_task_names(tmp_path: Path) -> None:
    app = project(tmp_path, f"sqlite://{tmp_path / 'broker.sqlite3'}")

    @app.task(name=HOSTILE)
    def hostile() -> None:
        pass

    with start_worker(app, hostname=f"evil{TITLE}@host"):
        status = cli(tmp_path, "status")
        registered = cli(tmp_path, "inspect", "registered")
    app.close()
    for out in (status, registered):
        assert out.returncode == 0, out.stderr
        assert_inert(out.stdout)
        assert "->  evil\\x1b]0;pwned\\x07@host: OK" in out.stdout
    assert f"* {printable(HOSTILE)}" in registered.stdout


class Lines:
    """A subprocess's stdout, line by line, read on a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        stdout = proc.stdout
        assert stdout is not None
        threading.Thread(target=lambda: [self.lines.put(line) for line in stdout],
                         daemon=True).start()

    def until(self, found: Callable[[str], bool], timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if found(line):
                return line


def test_events_dump_escapes_hostile_fields(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'broker.sqlite3'}"
    app = project(tmp_path, url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "corekit", "-A", "proj", "events", "--dump"], cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out = Lines(proc)
        out.until(lambda line: line.startswith("-> corekit events: dumping"))
        dispatcher = EventDispatcher(app, hostname=f"w{CLEAR}@h", groups={"task"})
        dispatcher.send("task-received", uuid="u1", name=HOSTILE, args=f"[{TITLE}]",
                        kwargs="{}")
        dispatcher.send("task-failed", uuid="u1", exception="ValueError()",
                        traceback=f"Traceback:\n  {TITLE}\nValueError\n")
        dispatcher.close(5.0)
        received = out.until(lambda line: "task received" in line)
        failed = out.until(lambda line: "task failed" in line)
    finally:
        proc.terminate()
        proc.wait(15)
        app.close()
    for line in (received, failed):
        assert_inert(line)
        assert line.startswith("w\\x1b[2J@h [")
    assert printable(HOSTILE) in received
    assert "traceback=Traceback:\\n  \\x1b]0;pwned\\x07\\nValueError\\n" in failed
