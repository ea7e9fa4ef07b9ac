"""Debian's headless Chromium driven by Playwright, for the browser tests
(the web monitor, the Django admin).  Without Chromium or Playwright a test
skips, and fails under CI=true.  Screenshots go to tests/artifacts/."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from servers import unavailable

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
#: How long a page may take to show something (the monitor polls every 1.5 s).
UI_TIMEOUT = 15_000


@pytest.fixture
def page() -> Iterator[Any]:
    if importlib.util.find_spec("playwright") is None:
        unavailable("playwright is not installed: `pip install -e '.[test]'` "
                    "(scripts/test.sh does this)")
    if not os.path.exists(CHROMIUM):
        unavailable(f"{CHROMIUM} is missing: `apt-get install chromium` "
                    f"(scripts/test.sh does this)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("monitor-*.png"):
        old.unlink(missing_ok=True)  # a test on another xdist worker may have taken it
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.set_default_timeout(UI_TIMEOUT)
            page.on("dialog", lambda dialog: dialog.accept())  # the confirms of actions
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page
            assert not errors, f"the page's JavaScript failed: {errors}"
        finally:
            browser.close()


def shoot(page: Any, name: str, prefix: str = "monitor") -> Path:
    """A full-page screenshot, tests/artifacts/<prefix>-<name>.png."""
    path = ARTIFACTS / f"{prefix}-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
