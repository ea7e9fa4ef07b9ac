"""The Django tests again on Django 6 (Python >= 3.12), in the venv that
scripts/test.sh builds (.venvs/django6), while this suite runs them on
Django 5.2: both are supported."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

django = pytest.importorskip("django", reason="Django is a test dependency")

ROOT = Path(__file__).resolve().parents[3]
VENV_PYTHON = ROOT / ".venvs" / "django6" / "bin" / "python"

pytestmark = pytest.mark.slow


@pytest.mark.skipif(django.VERSION[0] >= 6, reason="this run is the Django 6 run")
def test_the_django_tests_pass_on_django_6() -> None:
    if not VENV_PYTHON.exists():
        message = f"no Django 6 venv at {VENV_PYTHON}: scripts/test.sh builds it with python3.12"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    version = subprocess.run([str(VENV_PYTHON), "-c", "import django, sys; "
                              "print(django.get_version(), sys.version_info[:2] >= (3, 12))"],
                             capture_output=True, text=True, check=True).stdout.split()
    assert version[0].startswith("6.") and version[1] == "True", version
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    done = subprocess.run([str(VENV_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/contrib/django"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
