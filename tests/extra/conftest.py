"""Fixtures of the extra/ tests: one project directory for the whole session."""
from __future__ import annotations

from pathlib import Path

import pytest

from extra_helpers import PROJ


@pytest.fixture(scope="session")
def proj_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The services' working directory: ``proj.py`` (the app).  Each test
    gives its services a broker of its own (COREKIT_BROKER_URL)."""
    directory = tmp_path_factory.mktemp("proj")
    (directory / "proj.py").write_text(PROJ)
    return directory
