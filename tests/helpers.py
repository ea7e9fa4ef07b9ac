"""Helpers shared by test modules (import as ``from helpers import ...``)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import corekit._speedups as speedups

ROOT = Path(__file__).resolve().parent.parent

#: The hot path's two implementations, for tests that run both side by side.
PYTHON = speedups.load("python")
try:
    CYTHON = speedups.load("cython")
except ImportError:
    CYTHON = None
IMPLS = [pytest.param(PYTHON, id="python"),
         pytest.param(CYTHON, id="cython",
                      marks=pytest.mark.skipif(CYTHON is None, reason="extensions not built"))]
needs_both = pytest.mark.skipif(CYTHON is None, reason="extensions not built: nothing to compare")


def run_cli(*args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None,
            timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m corekit ARGS`` and capture its output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "corekit", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, input=input)
