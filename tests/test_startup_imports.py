"""What ``corekit --help`` and app creation import (issue 13's start-up
targets: help <= 80 ms, app creation <= 60 ms, measured by
benchmarks/bench_startup.py).  Each module listed here was a measured cost
that was taken out of these paths; a test per path keeps it from creeping
back.  Read from ``sys.modules`` of a fresh interpreter, so nothing another
test imported counts."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT

#: Out of both paths: package metadata (``corekit.entrypoints`` reads entry
#: points without it), serializer implementations (imported when a codec is
#: built), the worker (the optional steps' plugin lives outside it), pluggy
#: (collected hooks are read without it; it dispatches lifecycle hooks), and
#: dataclasses with the inspect it imports (`corekit.frozen` says why).
NEVER = ("importlib.metadata", "email", "csv", "pickle", "decimal",
         "corekit.plugins.json_serializer.serializer", "corekit.worker", "pluggy",
         "dataclasses", "inspect")
#: Out of app creation too: the producer and what it brings (publishing
#: imports it), the canvas (the built-in tasks import it when they run);
#: a task reads its signature (inspect) when a call is first checked.
APP_NEVER = NEVER + ("json", "signal", "logging", "socket", "uuid", "corekit.producer",
                     "corekit.messages", "corekit.transport", "corekit.canvas",
                     "corekit.workflow")
#: Out of ``--help`` too: what only running a command needs (the app, its
#: logging, signal handlers, the banner's platform, JSON output, tracebacks).
HELP_NEVER = NEVER + ("json", "signal", "platform", "traceback", "logging", "datetime",
                      "uuid", "socket", "corekit.app")

APP = '''
from corekit import Corekit
app = Corekit("proj", broker={url!r}, backend={url!r})
@app.task
def add(x, y):
    return x + y
app.tasks
'''

HELP = '''
import contextlib, io
from corekit.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(["--help"])
    except SystemExit:
        pass
'''


def modules_after(code: str, cwd: Path) -> set[str]:
    """``sys.modules`` after *code* in a fresh interpreter (printed without
    importing anything more)."""
    code += "\nimport sys\nprint('\\n'.join(sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.splitlines())


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The *names* (or their submodules) that are in *modules*."""
    return [name for name in names
            if name in modules or any(m.startswith(name + ".") for m in modules)]


@pytest.mark.parametrize("where", ["checkout", "elsewhere"])
def test_app_creation_imports_none_of_the_costs_taken_out(where: str, tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'app.sqlite3'}"
    modules = modules_after(APP.format(url=url), ROOT if where == "checkout" else tmp_path)
    assert "corekit.app" in modules and "corekit.plugins.sqlite" in modules
    assert loaded(modules, APP_NEVER) == []


def test_help_imports_none_of_the_costs_taken_out(tmp_path: Path) -> None:
    modules = modules_after(HELP, tmp_path)
    assert "corekit.cli" in modules and "corekit.plugins.sqlite" in modules
    assert loaded(modules, HELP_NEVER) == []
