"""The admin pages of the django-db results in headless Chromium: a
superuser logs in to the example project's admin (Django's development
server) and filters and searches the task results a real worker stored."""
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


def results_admin(page: Any, project: Project) -> None:  # noqa: F811
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT)
    project.env["PROJ_RESULT_BACKEND"] = "django-db"
    assert project.run("manage.py", "migrate", "--noinput").returncode == 0
    made = project.run("manage.py", "shell", "-c", "from django.contrib.auth.models import User; "
                       "User.objects.create_superuser('admin', 'a@example.com', 'pw-admin-1')")
    assert made.returncode == 0, made.stderr
    project.start("manage.py", "corekit", "worker", "-c", "2", "-l", "info")
    project.wait_for("ready.")
    sent = project.run("manage.py", "shell", "-c", SEND)
    assert sent.returncode == 0, sent.stderr
    ok_id, bad_id = sent.stdout.strip().splitlines()[-1].split()
    port = free_port()
    project.start("manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", log="web.log")
    project.wait_for("Quit the server", log="web.log")

    base = f"http://127.0.0.1:{port}/admin/"
    page.goto(base)
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw-admin-1")
    page.click("input[type=submit]")
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
