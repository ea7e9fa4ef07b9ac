"""Helpers shared by test modules (import as ``from helpers import ...``)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None,
            timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m corekit ARGS`` and capture its output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "corekit", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, input=input)
