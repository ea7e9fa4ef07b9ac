"""Finding a project's tasks: ``config_from_object(..., namespace=...)``,
``autodiscover_tasks()``, ``@shared_task`` and the warning for one module
imported under two names (the ``proj.myapp`` / ``myapp`` trap)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import types
import warnings
from pathlib import Path
from typing import Any, Iterator

import pytest

from corekit import Corekit
from corekit.exceptions import DuplicateTaskWarning
from corekit.hookspecs import hookimpl
from plugin_hooks_helpers import manager_with


# -- settings under a namespace ------------------------------------------------------

def test_a_namespace_reads_its_prefixed_uppercase_names_only() -> None:
    settings = types.SimpleNamespace(
        COREKIT_BROKER_URL="memory://ns", COREKIT_TASK_ALWAYS_EAGER=True,
        COREKIT_BEAT_SCHEDULE={"a": {"task": "t", "schedule": 1.0}},
        CELERY_BROKER_URL="memory://celery", DEBUG=True, task_serializer="msgpack",
        COREKIT_lower="ignored", COREKIT_="ignored")
    app = Corekit("ns")
    app.config_from_object(settings, namespace="COREKIT")
    assert app.conf.broker_url == "memory://ns"
    assert app.conf.task_always_eager is True
    assert app.conf.beat_schedule == {"a": {"task": "t", "schedule": 1.0}}
    assert app.conf.task_serializer == "json"  # not in the namespace
    assert set(app.conf.changes()) == {"broker_url", "task_always_eager", "beat_schedule"}


def test_a_celery_projects_settings_load_under_its_own_namespace() -> None:
    app = Corekit("ns")
    app.config_from_object({"CELERY_BROKER_URL": "memory://c", "CELERY_RESULT_BACKEND":
                            "memory://c", "CELERY_TASK_ACKS_LATE": True, "OTHER": 1},
                           namespace="CELERY")
    assert app.conf.changes() == {"broker_url": "memory://c", "result_backend": "memory://c",
                                  "task_acks_late": True}


def test_a_mistyped_namespaced_setting_warns_by_its_name() -> None:
    app = Corekit("ns", broker="memory://x", backend="memory://x")
    app.config_from_object({"COREKIT_TASK_SERIALISER": "json"}, namespace="COREKIT")
    with pytest.warns(UserWarning, match="task_serialiser.*task_serializer"):
        app.finalize()


@pytest.mark.parametrize("namespace", ["", "two words", 3, "COREKIT_"])
def test_a_bad_namespace_is_refused(namespace: Any) -> None:
    if namespace == "COREKIT_":  # a valid name: it reads COREKIT__X keys
        Corekit("ns").config_from_object({}, namespace=namespace)
        return
    with pytest.raises(ValueError, match="namespace must be a name"):
        Corekit("ns").config_from_object({}, namespace=namespace)


# -- autodiscover_tasks ---------------------------------------------------------------

@pytest.fixture
def packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Importable packages written by the test (removed from sys.modules
    after, and their shared tasks forgotten: later apps would make them)."""
    from corekit import shared_tasks

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(shared_tasks, "_shared", list(shared_tasks._shared))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def write(root: Path, module: str, text: str = "") -> None:
    path = root.joinpath(*module.split("."))
    path.parent.mkdir(parents=True, exist_ok=True)
    for parent in [p for p in path.parents if p != root and root in p.parents]:
        (parent / "__init__.py").touch()
    path.with_suffix(".py").write_text(textwrap.dedent(text))


TASKS = '''
from corekit import shared_task

@shared_task
def {name}():
    return "{name}"
'''


def test_discovery_waits_for_finalize_and_skips_packages_without_tasks(packages: Path) -> None:
    write(packages, "shop.tasks", TASKS.format(name="bill"))
    write(packages, "shop.models")
    write(packages, "blog.models")  # no tasks module: skipped
    write(packages, "mail.jobs", TASKS.format(name="send"))
    app = Corekit("proj", broker="memory://d", backend="memory://d")
    app.autodiscover_tasks(["shop", "blog"])
    app.autodiscover_tasks(lambda: ["mail"], related_name="jobs")  # read when it runs
    assert "shop.tasks" not in sys.modules  # lazily: nothing yet
    assert {"shop.tasks.bill", "mail.jobs.send"} <= set(app.tasks)  # app.tasks finalizes
    assert "blog.tasks" not in sys.modules


def test_force_imports_at_once_and_after_finalize_it_runs_at_once(packages: Path) -> None:
    write(packages, "shop.tasks", TASKS.format(name="bill"))
    write(packages, "mail.tasks", TASKS.format(name="send"))
    app = Corekit("proj", broker="memory://d", backend="memory://d")
    app.autodiscover_tasks(["shop"], force=True)
    assert "shop.tasks" in sys.modules and not app._finalized
    app.finalize()
    app.autodiscover_tasks(["mail"])
    assert "mail.tasks.send" in app.tasks


def test_an_error_inside_a_tasks_module_or_a_missing_package_is_raised(packages: Path) -> None:
    write(packages, "broken.tasks", "import not_installed_anywhere\n")
    app = Corekit("proj", broker="memory://d", backend="memory://d")
    app.autodiscover_tasks(["broken"], force=False)
    with pytest.raises(ModuleNotFoundError, match="not_installed_anywhere"):
        app.finalize()
    other = Corekit("proj", broker="memory://d", backend="memory://d")
    with pytest.raises(ModuleNotFoundError, match="no_such_package"):
        other.autodiscover_tasks(["no_such_package"], force=True)


@pytest.mark.parametrize("packages_arg, error", [("shop", TypeError), ([3], TypeError)])
def test_bad_packages_are_refused(packages_arg: Any, error: type[Exception]) -> None:
    app = Corekit("proj", broker="memory://d", backend="memory://d")
    with pytest.raises(error, match="package"):
        app.autodiscover_tasks(packages_arg, force=True)


def test_bad_related_name_is_refused() -> None:
    with pytest.raises(ValueError, match="related_name"):
        Corekit("proj").autodiscover_tasks(["shop"], related_name="my tasks")


class Installed:
    """A plugin naming the installed packages, or None while it cannot tell."""

    def __init__(self) -> None:
        self.ready = False

    @hookimpl
    def corekit_task_packages(self, app: Corekit) -> list[str] | None:
        return ["shop", "mail"] if self.ready else None


def test_without_packages_a_plugin_names_them_when_it_can(packages: Path) -> None:
    write(packages, "shop.tasks", TASKS.format(name="bill"))
    write(packages, "mail.tasks", TASKS.format(name="send"))
    plugin = Installed()
    app = Corekit("proj", broker="memory://d", backend="memory://d",
                  plugin_manager=manager_with(("installed", plugin)))
    app.autodiscover_tasks()
    app.finalize()  # the plugin cannot tell yet: discovery waits
    assert "shop.tasks" not in sys.modules
    plugin.ready = True
    assert app.discover_tasks() == ["shop.tasks", "mail.tasks"]  # as a worker start does
    assert app.discover_tasks() == []  # done once


# -- shared_task ----------------------------------------------------------------------

def test_a_shared_task_is_made_on_every_app_and_calls_the_current_one(packages: Path) -> None:
    first = Corekit("first", broker="memory://s1", backend="memory://s1")
    write(packages, "lib.tasks", '''
        from corekit import shared_task

        @shared_task(bind=True, max_retries=7)
        def where(self):
            return self.app.main
        ''')
    import lib.tasks  # type: ignore[import-not-found]

    second = Corekit("second", broker="memory://s2", backend="memory://s2")
    assert "lib.tasks.where" in first.tasks and "lib.tasks.where" in second.tasks
    assert first.tasks["lib.tasks.where"].max_retries == 7
    assert lib.tasks.where() == "second"  # the current app: the latest made
    assert lib.tasks.where.name == "lib.tasks.where"
    assert lib.tasks.where.apply().get() == "second"
    assert "shared task lib.tasks.where" in repr(lib.tasks.where)


def test_shared_task_refuses_positional_options() -> None:
    from corekit import shared_task

    with pytest.raises(TypeError, match="by keyword"):
        shared_task("name")


# -- one module, two names ------------------------------------------------------------

def test_a_module_imported_under_two_names_warns_naming_both(packages: Path) -> None:
    write(packages, "project.myapp.tasks", '''
        from corekit import current_app

        @current_app().task
        def add(x, y):
            return x + y
        ''')
    (packages / "project" / "myapp" / "__init__.py").touch()
    app = Corekit("proj", broker="memory://w", backend="memory://w")
    sys.path.insert(0, str(packages / "project"))  # as a Django project's layout allows
    try:
        import project.myapp.tasks  # noqa: F401
        with pytest.warns(DuplicateTaskWarning) as caught:
            import myapp.tasks  # type: ignore[import-not-found]  # noqa: F401
    finally:
        sys.path.remove(str(packages / "project"))
    message = str(caught[0].message)
    assert "'myapp.tasks.add' is also registered as 'project.myapp.tasks.add'" in message
    assert "imported as both myapp.tasks and project.myapp.tasks" in message
    assert caught[0].filename.endswith("tasks.py")  # the user's line, not corekit's
    assert {"myapp.tasks.add", "project.myapp.tasks.add"} <= set(app.tasks)


def test_the_same_module_imported_once_and_named_tasks_do_not_warn(memory_app: Corekit) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DuplicateTaskWarning)

        def add(x: int, y: int) -> int:
            return x + y

        memory_app.task(add)
        memory_app.task(add)  # registered again under the same name
        memory_app.task(name="other.add")(add)  # named by hand: on purpose


def test_a_worker_says_when_no_plugin_could_name_the_packages(
        packages: Path, caplog: pytest.LogCaptureFixture) -> None:
    from corekit.testing import start_worker

    app = Corekit("proj", broker="memory://nw", backend="memory://nw",
                  plugin_manager=manager_with(("installed", Installed())))
    app.autodiscover_tasks()
    with start_worker(app):
        pass
    assert "autodiscover_tasks() was given no packages and no plugin names any" in caplog.text
