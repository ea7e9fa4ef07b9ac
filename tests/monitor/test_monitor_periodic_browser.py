"""The monitor's periodic-tasks page in headless Chromium (the fixture and
screenshots of test_monitor_browser.py), against a worker running a beat
(``-B``) on SQLite: entries added with `PeriodicTasks`, their runs and
outcomes, hostile names shown as text, and the Disable button stopping a
running beat from firing an entry."""
from __future__ import annotations

from typing import Any

import pytest

from corekit import Corekit
from corekit.monitor.server import Monitor
from corekit.schedules import crontab
from corekit.schedules.periodic import PeriodicTasks
from monitor_helpers import define_tasks, monitored, wait_until
from browser import UI_TIMEOUT, page, shoot  # noqa: F401  (the page fixture)

pytestmark = pytest.mark.timeout(120)

HTML_NAME = '<img src=x onerror="document.title=\'owned\'">'


def runs_of(tasks: PeriodicTasks, name: str) -> int:
    row = tasks.get(name)
    assert row is not None
    return row.total_run_count


def row(page: Any, name: str) -> Any:
    return page.locator('[data-testid="periodic-row"]').filter(
        has=page.get_by_test_id("periodic-name").get_by_text(name, exact=True))


def test_the_periodic_tasks_page_in_chromium(page: Any, sqlite_app: Corekit) -> None:  # noqa: F811
    try:
        periodic_page(page, sqlite_app)
    except BaseException:
        shoot(page, "periodic-failure")
        raise


def periodic_page(page: Any, app: Corekit) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT)
    define_tasks(app)
    app.conf.worker_beat = True
    app.conf.beat_lease_timeout = 2.0
    with PeriodicTasks(app) as tasks:
        tasks.add("fast-add", "proj.add", 0.3, args=(2, 3))
        tasks.add("nightly", "proj.add", crontab(hour=2, minute=30), args=(0, 0))
        tasks.add(HTML_NAME, "proj.add", 3600, kwargs={"x": "<script>alert(1)</script>"},
                  enabled=False)
        tasks.add("..", "proj.add", 3600)
        tasks.store.put("garbage", '{"task": "proj.add", "schedule": {"type": "lunar"}}', "api")
        with monitored(app) as (worker, monitor):
            wait_until(lambda: runs_of(tasks, "fast-add") >= 2, what="the beat firing fast-add")
            page.goto(monitor.url + "/")
            page.get_by_test_id("nav-periodic").click()
            fast = row(page, "fast-add")
            expect(fast.get_by_test_id("periodic-outcome")).to_have_text("SUCCESS")
            expect(fast.get_by_test_id("periodic-schedule")).to_have_text("<freq: 0:00:00.300000>")
            expect(fast.get_by_test_id("periodic-args")).to_have_text("args=[2,3]")
            expect(page.get_by_test_id("periodic-leader")).to_contain_text(
                f"beat@{worker.hostname}")
            expect(row(page, "nightly").get_by_test_id("periodic-schedule")).to_contain_text(
                "30 2 * * *")
            expect(row(page, "nightly").get_by_test_id("periodic-last")).to_have_text("never")
            # markup in a name or an argument is text: nothing injected, nothing ran
            hostile = row(page, HTML_NAME)
            expect(hostile.get_by_test_id("periodic-enabled")).to_have_text("no")
            expect(hostile.get_by_test_id("periodic-args")).to_contain_text("<script>")
            assert page.locator("main img, main script").count() == 0
            assert page.title() == "corekit monitor"
            # a bad stored entry shows why, and cannot be toggled
            bad = row(page, "garbage")
            expect(bad.get_by_test_id("periodic-error")).to_contain_text("lunar")
            expect(bad.get_by_test_id("periodic-toggle")).to_be_disabled()
            shoot(page, "periodic")

            page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
            hostile.get_by_test_id("periodic-toggle").click()
            expect(hostile.get_by_test_id("periodic-enabled")).to_have_text("yes")
            row(page, "..").get_by_test_id("periodic-toggle").click()
            expect(row(page, "..").get_by_test_id("periodic-enabled")).to_have_text("no")
            assert tasks.get(HTML_NAME).entry.enabled and not tasks.get("..").entry.enabled

            fast.get_by_test_id("periodic-toggle").click()
            expect(page.get_by_test_id("flash")).to_contain_text("periodic task fast-add disabled")
            expect(fast.get_by_test_id("periodic-enabled")).to_have_text("no")
            expect(fast.get_by_test_id("periodic-next")).to_have_text("—")
            assert tasks.get("fast-add").entry.enabled is False
            stops_firing(tasks, monitor)
            shoot(page, "periodic-disabled")


def stops_firing(tasks: PeriodicTasks, monitor: Monitor) -> None:
    """The beat applies changes in store order: once an entry added after
    the disable has fired, the beat saw the disable, and the disabled entry
    fires no more (one run claimed before it saw it is allowed)."""
    tasks.add("sentinel", "proj.add", 0.2, args=(0, 1))
    wait_until(lambda: runs_of(tasks, "sentinel") >= 1, what="the sentinel's first run")
    frozen = runs_of(tasks, "fast-add")
    wait_until(lambda: runs_of(tasks, "sentinel") >= 6, what="five more sentinel runs")
    assert runs_of(tasks, "fast-add") == frozen


def test_the_page_says_when_there_is_no_schedule_store(page: Any,  # noqa: F811
                                                       memory_app: Corekit) -> None:
    from playwright.sync_api import expect

    with Monitor(memory_app, port=0, inspect_interval=0.5, inspect_timeout=0.2) as monitor:
        page.goto(monitor.url + "/#/periodic")
        expect(page.get_by_test_id("periodic-unavailable")).to_contain_text(
            "The schedule store is unavailable: periodic tasks need a schedule store",
            timeout=UI_TIMEOUT)
        expect(page.get_by_test_id("nav-periodic")).to_have_class("active")
