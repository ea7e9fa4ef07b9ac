"""What the tests of extra/ (systemd units, supervisor programs, the Docker
image) share: the app they serve, and a service process read line by line."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Mapping

from helpers import ROOT, LineReader

EXTRA = ROOT / "extra"
#: where the files of extra/ say corekit is installed (a virtualenv in /opt/corekit)
INSTALLED = "/opt/corekit/venv/bin/corekit"
#: where they say the project is (the services' working directory)
PROJECT_DIR = "/opt/corekit/app"

#: the app the services run: broker and results from COREKIT_BROKER_URL and
#: COREKIT_RESULT_BACKEND, as the files of extra/ set them
PROJ = '''
import os, time
from corekit import Corekit

HERE = os.path.dirname(os.path.abspath(__file__))
app = Corekit("proj")
app.conf.beat_schedule = {
    "tick": {"task": "proj.touch", "schedule": 0.5, "args": ("ticks",)},
}

@app.task
def add(x, y):
    return x + y

@app.task
def sleepy(name, seconds):
    open(os.path.join(HERE, name), "w").write("started")
    time.sleep(seconds)
    return "slept"

@app.task
def touch(name):
    with open(os.path.join(HERE, name), "a") as f:
        f.write("tick\\n")
'''


def corekit_command() -> list[str]:
    """How this test run starts ``corekit``: the console script beside this
    Python, as a virtualenv has it, else ``python -m corekit``."""
    script = Path(sys.executable).parent / "corekit"
    return [str(script)] if script.exists() else [sys.executable, "-m", "corekit"]


def service_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment a service manager gives: little besides *extra*."""
    base = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "PYENV_ROOT",
                                                 "PYENV_VERSION") if name in os.environ}
    return {**base, **extra}


class Service(LineReader):
    """A service's command as its own process group (as systemd's cgroup or
    supervisor's process), stdout and stderr merged, read by a thread."""

    def __init__(self, argv: list[str], cwd: Path, env: Mapping[str, str]) -> None:
        super().__init__(argv, cwd, env, start_new_session=True)

    def signal_group(self, signum: int) -> None:
        os.killpg(self.proc.pid, signum)

    def kill(self) -> None:
        """SIGKILL to the whole group (what a service manager does last)."""
        if self.proc.poll() is None:
            try:
                self.signal_group(signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)


def group_alive(pgid: int) -> bool:
    """Whether any process of the group *pgid* is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
