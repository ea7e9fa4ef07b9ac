"""The web monitor in a real browser: Debian's headless Chromium driven by
Playwright, against a real worker on SQLite and a monitor started here.

Screenshots go to tests/artifacts/monitor-*.png; with
COREKIT_SCREENSHOT_README=1 the test then sends 20 s of tasks and saves the
dashboard as docs/monitor.png for the README.  Without Chromium or Playwright the test
skips, and fails under CI=true.
"""
from __future__ import annotations

import os
import time
from typing import Any

import pytest

from corekit import Corekit
from browser import ROOT, UI_TIMEOUT, page, shoot  # noqa: F401  (the page fixture)
from monitor_helpers import define_tasks, monitored, task_state, wait_until

pytestmark = pytest.mark.timeout(120)

def test_the_dashboard_tasks_task_page_and_a_revoke_in_chromium(page: Any,
                                                                sqlite_app: Corekit) -> None:
    try:
        click_through(page, sqlite_app)
    except BaseException:
        shoot(page, "failure")
        raise


def click_through(page: Any, app: Corekit) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT)
    tasks = define_tasks(app)
    with monitored(app, concurrency=1) as (worker, monitor):
        added = [tasks["add"].delay(i, i + 1) for i in range(6)]
        failed = tasks["boom"].delay("kaput")
        for result in added:
            result.get(timeout=15)
        blocker = tasks["block"].delay()
        waiting = tasks["add"].delay(40, 2)  # behind the blocker on the one-slot pool
        wait_until(lambda: task_state(monitor, waiting.id) == "RECEIVED", what="received")

        # the dashboard: the worker online, the latest tasks, the charts
        page.goto(monitor.url + "/")
        row = page.locator(f'[data-testid="worker-row"][data-hostname="{worker.hostname}"]')
        expect(row.get_by_test_id("worker-status")).to_have_text("ONLINE")
        expect(row).to_contain_text("threads")
        expect(page.get_by_test_id("card-failed")).to_have_text("1")
        expect(page.locator(f'[data-testid="task-row"][data-task-id="{failed.id}"]')
               ).to_be_visible()
        expect(page.locator('[data-testid="queue-row"][data-queue="celery"]')).to_be_visible()
        expect(page.get_by_test_id("chart-throughput-total")).not_to_have_text("0 in 5 min")
        shoot(page, "dashboard")

        # the tasks table, filtered by state, then searched by args
        page.get_by_test_id("nav-tasks").click()
        rows = page.get_by_test_id("task-row")
        expect(rows).to_have_count(9)
        page.get_by_test_id("filter-state").select_option("FAILURE")
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_attribute("data-task-id", failed.id)
        page.get_by_test_id("filter-state").select_option("")
        page.get_by_test_id("filter-name").select_option("proj.add")
        expect(rows).to_have_count(7)
        page.get_by_test_id("filter-search").fill("3, 4")
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_attribute("data-task-id", added[3].id)
        shoot(page, "tasks-filtered")

        # a task page: args, result and the timeline of its events
        rows.first.get_by_test_id("task-link").get_by_role("link").click()
        expect(page.get_by_test_id("task-state")).to_have_text("SUCCESS")
        expect(page.get_by_test_id("task-args")).to_have_text("[3, 4]")
        expect(page.get_by_test_id("task-result")).to_have_text("7")
        expect(page.get_by_test_id("timeline-event")).to_have_count(3)
        expect(page.get_by_test_id("timeline-event").last).to_have_attribute(
            "data-type", "task-succeeded")
        shoot(page, "task")

        # the failed task shows its traceback and offers a retry
        page.goto(f"{monitor.url}/#/task/{failed.id}")
        expect(page.get_by_test_id("task-traceback")).to_contain_text("ValueError: boom kaput")
        expect(page.get_by_test_id("action-retry")).to_be_visible()
        # and links to its whole result and traceback, read from the result backend
        stored = page.get_by_test_id("task-stored-result")
        expect(stored).to_be_visible()
        assert stored.get_attribute("href") == f"/api/tasks/{failed.id}/result"
        whole = page.request.get(f"{monitor.url}/api/tasks/{failed.id}/result")
        assert whole.ok and "ValueError: boom kaput" in whole.json()["traceback"]

        # revoke the task waiting behind the blocker, through the UI
        page.goto(f"{monitor.url}/#/task/{waiting.id}")
        expect(page.get_by_test_id("task-state")).to_have_text("RECEIVED")
        expect(page.get_by_test_id("action-retry")).to_have_count(0)
        page.get_by_test_id("action-revoke").click()
        expect(page.get_by_test_id("flash")).to_contain_text("revoke of")
        wait_until(lambda: worker.consumer.revoked.reason(waiting.id, {}), what="the revoke")
        tasks["gate"].set()
        assert blocker.get(timeout=15) == "unblocked"
        expect(page.get_by_test_id("task-state")).to_have_text("REVOKED")
        expect(page.get_by_test_id("timeline-event").last).to_have_attribute(
            "data-type", "task-revoked")
        shoot(page, "revoked")

        # the worker page: grow its pool, set a rate limit
        page.goto(f"{monitor.url}/#/worker/{worker.hostname}")
        expect(page.get_by_test_id("worker-concurrency")).to_have_text("1")
        page.get_by_test_id("action-pool-grow").click()
        expect(page.get_by_test_id("flash")).to_contain_text("Grow pool")
        expect(page.get_by_test_id("worker-concurrency")).to_have_text("2")
        assert worker.pool.concurrency == 2
        page.get_by_test_id("rate-limit-task").select_option("proj.add")
        page.get_by_test_id("rate-limit-rate").fill("5/s")
        page.get_by_test_id("action-rate-limit").click()
        expect(page.get_by_test_id("flash")).to_contain_text("Rate limit: ")
        assert app.tasks["proj.add"].rate_limit == "5/s"
        shoot(page, "worker")

        if os.environ.get("COREKIT_SCREENSHOT_README") == "1":
            added_more = make_some_traffic(tasks)
            page.goto(monitor.url + "/")
            # the six adds, the blocker, and the traffic: the charts come in the same poll
            expect(page.get_by_test_id("card-succeeded")).to_have_text(str(7 + added_more))
            (ROOT / "docs").mkdir(exist_ok=True)
            page.screenshot(path=str(ROOT / "docs" / "monitor.png"))


def make_some_traffic(tasks: dict[str, Any], seconds: float = 20.0) -> int:
    """For the README's screenshot only: some seconds of tasks, so that the
    charts have bars to show; returns how many adds it sent."""
    end = time.monotonic() + seconds
    i = sent = 0
    while time.monotonic() < end:
        results = [tasks["add"].delay(i, n) for n in range(1 + i % 7)]
        if i % 5 == 2:
            results.append(tasks["boom"].delay(str(i)))
        for result in results:
            result.get(timeout=15, propagate=False)
        sent += 1 + i % 7
        i += 1
        time.sleep(0.25)  # a steady trickle rather than one burst
    return sent
