"""The admin pages of the django-db results and periodic tasks in headless
Chromium: a superuser logs in to the example project's admin (Django's
development server), filters and searches the task results a real worker
stored, and filters periodic tasks and disables one with the admin action."""
from __future__ import annotations

from typing import Any

import pytest
from browser import UI_TIMEOUT, page, shoot  # noqa: F401  (the page fixture)
from servers import free_port
from test_django_project import Project, project  # noqa: F401  (the project fixture)

django = pytest.importorskip("django", reason="Django is a test dependency")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180), pytest.mark.skipif(
    django.VERSION[0] >= 6, reason="the browser check runs with the main suite's Django")]

SEND = '''
from demoapp.tasks import add, refuse
ok = add.delay(20, 22)
bad = refuse.delay("no, thanks")
print(ok.get(timeout=60))
bad.get(timeout=60, propagate=False)
print(ok.id, bad.id)
'''


def test_the_results_admin_in_chromium(page: Any, project: Project) -> None:  # noqa: F811
    try:
        results_admin(page, project)
    except BaseException:
        shoot(page, "admin-failure", prefix="django")
        raise


def log_in(page: Any, project: Project) -> str:  # noqa: F811
    """Migrate, make a superuser, start the development server and log in;
    the admin's URL."""
    assert project.run("manage.py", "migrate", "--noinput").returncode == 0
    made = project.run("manage.py", "shell", "-c", "from django.contrib.auth.models import User; "
                       "User.objects.create_superuser('admin', 'a@example.com', 'pw-admin-1')")
    assert made.returncode == 0, made.stderr
    port = free_port()
    project.start("manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", log="web.log")
    project.wait_for("Quit the server", log="web.log")
    base = f"http://127.0.0.1:{port}/admin/"
    page.goto(base)
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw-admin-1")
    page.click("input[type=submit]")
    return base


def results_admin(page: Any, project: Project) -> None:  # noqa: F811
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT)
    project.env["PROJ_RESULT_BACKEND"] = "django-db"
    base = log_in(page, project)
    project.start("manage.py", "corekit", "worker", "-c", "2", "-l", "info")
    project.wait_for("ready.")
    sent = project.run("manage.py", "shell", "-c", SEND)
    assert sent.returncode == 0, sent.stderr
    ok_id, bad_id = sent.stdout.strip().splitlines()[-1].split()
    page.goto(base + "corekit/taskresult/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#result_list")).to_contain_text("demoapp.tasks.refuse")

    page.locator("#changelist-filter").get_by_role("link", name="FAILURE").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(bad_id)
    page.locator("#changelist-filter").get_by_role("link", name="demoapp.tasks.add").click()
    expect(page.locator("#result_list")).to_have_count(0)  # FAILURE and add: nothing
    page.goto(base + "corekit/taskresult/")
    page.fill("#searchbar", ok_id)
    page.press("#searchbar", "Enter")
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link", name=ok_id).click()
    expect(page.locator("body")).to_contain_text("42")  # the result, shown read-only
    expect(page.locator("body")).not_to_contain_text("Save and continue")
    shoot(page, "admin-result", prefix="django")


def test_the_periodic_tasks_admin_in_chromium(page: Any, project: Project) -> None:  # noqa: F811
    try:
        periodic_tasks_admin(page, project)
    except BaseException:
        shoot(page, "periodic-failure", prefix="django")
        raise


def periodic_tasks_admin(page: Any, project: Project) -> None:  # noqa: F811
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT)
    base = log_in(page, project)
    made = project.run("manage.py", "shell", "-c",
                       "from demoapp.periodic import schedule_reports; schedule_reports()")
    assert made.returncode == 0, made.stderr
    page.goto(base + "corekit/periodictask/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#result_list")).to_contain_text("every 10 seconds")

    # the "disable" action on one row, as an operator does it
    rows.filter(has_text="nightly-count").locator("input.action-select").check()
    page.select_option("select[name=action]", "disable_tasks")
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist")).to_contain_text("1 periodic task(s) disabled.")
    page.locator("#changelist-filter").get_by_role("link", name="No").first.click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("nightly-count")
    page.goto(base + "corekit/periodictask/")
    page.fill("#searchbar", "count_users")
    page.press("#searchbar", "Enter")
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link", name="nightly-count").click()
    expect(page.locator("#id_queue")).to_have_value("reports")
    shoot(page, "admin-periodic-task", prefix="django")
