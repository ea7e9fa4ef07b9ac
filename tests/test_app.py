"""The app: configuration, laziness, task definition, the registry."""
from __future__ import annotations

import inspect
import logging
import sys
import types

import pytest

from corekit import Corekit, Task, get_task_logger
from corekit.config import DEFAULTS
from corekit.exceptions import NotRegistered, PluginNotFound


def test_defaults_are_documented_and_readable() -> None:
    app = Corekit("proj")
    assert app.conf.task_serializer == "json"
    assert app.conf["accept_content"] == ["json"]
    assert app.conf.broker == "sqlite://" and app.conf.backend == "sqlite://"
    assert set(DEFAULTS) <= set(app.conf)
    with pytest.raises(AttributeError, match="no_such_setting"):
        app.conf.no_such_setting  # noqa: B018


def test_constructor_update_and_config_from_object() -> None:
    app = Corekit("proj", broker="memory://a", backend="memory://b", include=["x.y"])
    assert (app.conf.broker_url, app.conf.result_backend) == ("memory://a", "memory://b")
    assert app.conf.include == ["x.y"]
    app.conf.update(task_serializer="msgpack", worker_concurrency=3)
    assert app.conf.task_serializer == "msgpack"

    class Config:
        task_default_queue = "hipri"
        result_expires = 60
        _private = 1

    app.config_from_object(Config)
    assert app.conf.task_default_queue == "hipri" and app.conf.result_expires == 60
    assert "_private" not in app.conf.changes()
    app.config_from_object({"task_acks_late": True})
    assert app.conf.task_acks_late is True


def test_config_from_module_path(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("corekit_test_settings")
    module.task_serializer = "msgpack"  # type: ignore[attr-defined]
    module.broker_url = "memory://settings"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "corekit_test_settings", module)
    app = Corekit("proj")
    app.config_from_object("corekit_test_settings")
    assert app.conf.task_serializer == "msgpack"
    assert app.conf.broker == "memory://settings"


def test_environment_overrides_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COREKIT_BROKER_URL", "memory://from-env")
    monkeypatch.setenv("COREKIT_RESULT_BACKEND", "memory://results-env")
    app = Corekit("proj", broker="sqlite://ignored.db")
    assert app.conf.broker == "memory://from-env"
    assert app.conf.backend == "memory://results-env"


def test_app_is_lazy_includes_import_on_first_use(tmp_path, monkeypatch) -> None:
    (tmp_path / "corekit_lazy_tasks.py").write_text(
        "import corekit_lazy_log\ncorekit_lazy_log.imports.append(1)\n")
    log = types.ModuleType("corekit_lazy_log")
    log.imports = []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "corekit_lazy_log", log)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "corekit_lazy_tasks", raising=False)
    app = Corekit("proj", broker="memory://lazy", include=["corekit_lazy_tasks"])
    app.conf.update(task_default_queue="late")  # configuration after creation still counts
    assert log.imports == []  # type: ignore[attr-defined]
    assert "proj.nothing" not in app.tasks
    assert log.imports == [1]  # type: ignore[attr-defined]
    app.tasks  # noqa: B018 - a second use does not import again
    assert log.imports == [1]  # type: ignore[attr-defined]


def test_task_names_options_and_registry(memory_app: Corekit) -> None:
    @memory_app.task
    def add(x: int, y: int) -> int:
        return x + y

    @memory_app.task(name="custom.name", ignore_result=True, max_retries=7, acks_late=True,
                     serializer="msgpack", track_started=True, default_retry_delay=5)
    def other() -> None:
        pass

    assert add.name == f"{__name__}.add"
    assert add(2, 3) == 5
    assert isinstance(add, Task)
    assert memory_app.tasks[add.name] is add
    assert memory_app.tasks["custom.name"] is other
    assert (other.ignore_result, other.max_retries, other.acks_late, other.serializer,
            other.track_started, other.default_retry_delay) == (True, 7, True, "msgpack", True, 5)
    assert inspect.signature(add) == inspect.signature(add.__wrapped__)
    assert add.__doc__ == add.__wrapped__.__doc__
    with pytest.raises(NotRegistered, match="nope"):
        memory_app.tasks["nope"]
    with pytest.raises(TypeError, match="bogus"):
        memory_app.task(bogus=1)(lambda: None)


def test_main_module_tasks_are_named_after_the_app() -> None:
    app = Corekit("myproj", broker="memory://main")
    fn = types.FunctionType(compile("def hello(): return 1", "<x>", "exec").co_consts[0],
                            {"__name__": "__main__"})
    fn.__module__ = "__main__"
    assert app.task(fn).name == "myproj.hello"


def test_bind_gives_the_task_itself(memory_app: Corekit) -> None:
    @memory_app.task(bind=True)
    def whoami(self: Task) -> str:  # type: ignore[type-arg]
        return self.name

    assert whoami() == whoami.name
    assert whoami.request.called_directly


def test_get_task_logger_propagates_through_corekit_task() -> None:
    logger = get_task_logger("proj.tasks")
    assert logger.parent is logging.getLogger("corekit.task")


def test_unknown_transport_scheme_is_a_clear_error() -> None:
    app = Corekit("proj", broker="nosuch://host")
    with pytest.raises(PluginNotFound, match="nosuch"):
        app.connection()


def test_sqlite_is_the_default_and_lands_in_the_working_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = Corekit("proj")

    @app.task
    def noop() -> None:
        pass

    noop.delay()
    assert (tmp_path / "corekit.sqlite3").exists()
    assert app.connection().queue_size("celery") == 1
    app.close()


def test_url_without_scheme_is_a_clear_error() -> None:
    from corekit.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="broker URL 'localhost' has no scheme"):
        Corekit("proj", broker="localhost").connection()


def test_exponential_backoff_bounds() -> None:
    from corekit.task import exponential_backoff

    assert [exponential_backoff(2, n, 600, False) for n in range(5)] == [2, 4, 8, 16, 32]
    assert exponential_backoff(2, 20, 600, False) == 600
    jittered = [exponential_backoff(1, 3, 600, True) for _ in range(200)]
    assert all(0 <= j <= 8 for j in jittered) and len(set(jittered)) > 100


def test_a_bare_backend_scheme_is_its_url_and_django_db_needs_django() -> None:
    """Celery writes result_backend = "django-db": a registered scheme alone
    stands for scheme://; the django-db backend then says what it needs."""
    import subprocess
    import sys

    code = ("from corekit import Corekit; from corekit.exceptions import ImproperlyConfigured\n"
            "app = Corekit('x', broker='memory://b', backend='memory')\n"
            "print(app.backend.url)\n"
            "try:\n    Corekit('x', backend='django-db').backend\n"
            "except ImproperlyConfigured as exc:\n    print(exc)\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    url, error = done.stdout.strip().splitlines()
    assert url == "memory://"
    assert "django-db result backend needs a Django project" in error
