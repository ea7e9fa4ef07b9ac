"""`COREKIT_NO_EXTENSIONS=1` builds a pure-Python package that works."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import ROOT

pytestmark = pytest.mark.slow

SMOKE = '''
import corekit, corekit._speedups as speedups
from corekit import Corekit
from corekit.testing import start_worker
assert speedups.IMPLEMENTATION == "python", speedups.IMPLEMENTATION
assert "/site/" in corekit.__file__, corekit.__file__
app = Corekit("smoke", broker="sqlite://smoke.db", backend="sqlite://smoke.db")

@app.task
def add(x, y):
    return x + y

with start_worker(app):
    print(add.delay(20, 22).get(timeout=20))
'''


def test_pure_python_wheel_installs_and_runs(tmp_path: Path) -> None:
    env = {**os.environ, "COREKIT_NO_EXTENSIONS": "1"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp_path / "dist"), str(ROOT)],
                   check=True, env=env, capture_output=True)
    [wheel] = (tmp_path / "dist").glob("corekit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.endswith((".so", ".pyd"))]
    assert "corekit/plugins/sqlite/transport.py" in names and "corekit/py.typed" in names
    [entry_points] = [n for n in names if n.endswith("entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[corekit.plugins]" in text and "sqlite = corekit.plugins.sqlite" in text
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                    str(tmp_path / "site"), str(wheel)], check=True, capture_output=True)
    run_env = {k: v for k, v in os.environ.items() if k != "COREKIT_NO_EXTENSIONS"}
    run_env["PYTHONPATH"] = str(tmp_path / "site")
    out = subprocess.run([sys.executable, "-c", SMOKE], cwd=tmp_path, env=run_env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "42"
