"""The runnable examples under examples/ (DESIGN §1: each exercised by the
suite), run as a user runs them: the files copied into an empty directory,
a real worker on the embedded SQLite default, the driver script beside it."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from helpers import ROOT


@pytest.mark.parametrize("example, tasks, driver, says", [
    ("demo", "demo_tasks", "run_demo.py", "all correct: True"),
    ("canvas", "canvas_tasks", "tour.py", "chain's first result: collect()"),
])
def test_an_example_runs_against_a_worker(example: str, tasks: str, driver: str, says: str,
                                          tmp_path: Path) -> None:
    for source in (ROOT / "examples" / example).glob("*.py"):
        shutil.copy(source, tmp_path)
    env = {k: v for k, v in os.environ.items()
           if k not in ("COREKIT_BROKER_URL", "COREKIT_RESULT_BACKEND")}
    worker = subprocess.Popen([sys.executable, "-m", "corekit", "-A", tasks, "worker", "-l",
                               "info", "-c", "4", "--no-banner"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert worker.stdout is not None
        said = []
        for line in worker.stdout:
            said.append(line)
            if "ready." in line:
                break
        else:
            pytest.fail(f"the worker exited with {worker.wait()}: {''.join(said[-20:])}")
        # keep reading what it logs, or a full pipe stops it mid-demo
        threading.Thread(target=said.extend, args=(worker.stdout,), daemon=True).start()
        run = subprocess.run([sys.executable, driver], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=180)
        assert run.returncode == 0, run.stdout + run.stderr
        assert says in run.stdout
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            assert worker.wait(30) == 0
        finally:
            worker.kill()
