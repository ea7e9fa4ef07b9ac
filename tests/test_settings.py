"""Declared settings: the kernel's and the plugins' (``corekit_register_settings``)
are what ``app.conf`` knows.  An unknown key warns once with the closest
name, a wrong type is an error when the app finalizes, a name declared twice
is an error naming both declarers, and prefork's settings belong to prefork.
"""
from __future__ import annotations

import os
import sys
import types
import uuid
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest

from corekit import Corekit
from corekit.config import DEFAULTS, Setting, UnknownSettingWarning, declared_settings
from corekit.defaults import KERNEL_SETTINGS
from corekit.exceptions import ImproperlyConfigured
from corekit.hookspecs import hookimpl
from corekit.pluginmanager import PluginInfo, PluginManager
from corekit.testing import start_worker

WAIT = 30.0
PREFORK_SETTINGS = ("worker_max_tasks_per_child", "worker_max_memory_per_child",
                    "worker_autoscale")


class GreeterPlugin:
    """A third-party plugin that declares two settings."""

    @staticmethod
    @hookimpl
    def corekit_register_settings() -> Sequence[Setting]:
        return [Setting("greeter_greeting", "hello", str, "What the greeter says."),
                Setting("greeter_times", 1, int, "How many times it says it.")]


class ClashesWithGreeter:
    @staticmethod
    @hookimpl
    def corekit_register_settings() -> Sequence[Setting]:
        return [Setting("greeter_times", 2, int, "Also mine.")]


class ClashesWithKernel:
    @staticmethod
    @hookimpl
    def corekit_register_settings() -> Sequence[Setting]:
        return [Setting("task_serializer", "yaml", str, "Mine now.")]


class ReturnsNames:
    @staticmethod
    @hookimpl
    def corekit_register_settings() -> Sequence[Any]:
        return ["greeter_greeting"]


class DeclaresBadly:
    """Its own declaration is wrong: the error must name the plugin."""

    @staticmethod
    @hookimpl
    def corekit_register_settings() -> Sequence[Setting]:
        return [Setting("badly_count", "three", int, "A count.")]


def manager_with(*plugins: object) -> PluginManager:
    manager = PluginManager()
    for plugin in plugins:
        name = type(plugin).__name__
        manager.register(plugin, PluginInfo(name, __name__, "tests", "0"))
    return manager


def memory_app(**config: Any) -> Corekit:
    url = f"memory://{uuid.uuid4().hex}"
    return Corekit("tests", broker=url, backend=url, **config)


MEMORY_APP_LINE = memory_app.__code__.co_firstlineno + 2  # its Corekit(...) line


@pytest.fixture
def recorded() -> Iterator[list[warnings.WarningMessage]]:
    """Every UnknownSettingWarning, repeats included (Python's own once-per-
    place filter is off, so only corekit's once-per-key can hold them back)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def unknown(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, UnknownSettingWarning)]


# -- unknown keys ---------------------------------------------------------------------


def test_a_mistyped_key_warns_once_at_finalize_naming_the_closest_setting(
        recorded: list[warnings.WarningMessage]) -> None:
    app = memory_app(task_serialiser="msgpack")
    app.conf.task_serialiser = "json"  # set again before finalize: still one warning
    assert unknown(recorded) == []  # plugins are not known yet: nothing is said early
    app.finalize()
    assert unknown(recorded) == ["unknown setting 'task_serialiser' (did you mean "
                                 "'task_serializer'?): no part of corekit or its plugins "
                                 "reads it"]
    warned = next(w for w in recorded if issubclass(w.category, UnknownSettingWarning))
    assert (warned.filename, warned.lineno) == (__file__, MEMORY_APP_LINE)  # where it was set
    app.conf.task_serialiser = "pickle"
    app.conf.update(task_serialiser="json")
    assert len(unknown(recorded)) == 1


def test_after_finalize_a_key_warns_when_it_is_set_pointing_at_that_line(
        recorded: list[warnings.WarningMessage]) -> None:
    app = memory_app()
    app.finalize()
    app.conf.worker_prefetch_multiplyer = 2
    app.conf["worker_prefetch_multiplyer"] = 3
    app.conf.update({"totally_unrelated_thing": 1})
    assert unknown(recorded) == [
        "unknown setting 'worker_prefetch_multiplyer' (did you mean "
        "'worker_prefetch_multiplier'?): no part of corekit or its plugins reads it",
        "unknown setting 'totally_unrelated_thing': no part of corekit or its plugins "
        "reads it"]
    assert {w.filename for w in recorded if issubclass(w.category, UnknownSettingWarning)} \
        == {__file__}


def test_a_celery_setting_corekit_does_not_use_says_so(
        recorded: list[warnings.WarningMessage]) -> None:
    app = memory_app(worker_state_db="/var/run/celery/state", timezone="Europe/Paris",
                     worker_autoscaler="celery.worker.autoscale:Autoscaler")
    app.finalize()
    assert sorted(unknown(recorded)) == [
        "setting 'timezone' is a Celery setting not used by corekit: it has no effect",
        "setting 'worker_autoscaler' is a Celery setting not used by corekit (did you mean "
        "'worker_autoscale'?): it has no effect",
        "setting 'worker_state_db' is a Celery setting not used by corekit: it has no effect"]


def test_an_uppercase_key_gets_its_lowercase_suggestion(
        recorded: list[warnings.WarningMessage]) -> None:
    app = memory_app(TASK_SERIALIZER="json")
    app.finalize()
    assert unknown(recorded) == ["unknown setting 'TASK_SERIALIZER' (did you mean "
                                 "'task_serializer'?): no part of corekit or its plugins "
                                 "reads it"]


def test_declared_settings_of_the_kernel_and_of_plugins_do_not_warn() -> None:
    app = memory_app(task_serializer="json", worker_max_tasks_per_child=10,
                     worker_autoscale=(4, 1), result_expires=timedelta(hours=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownSettingWarning)
        app.finalize()
        app.conf.worker_max_memory_per_child = 200_000


def test_the_warning_can_be_made_an_error() -> None:
    app = memory_app(task_serialiser="json")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownSettingWarning)
        with pytest.raises(UnknownSettingWarning, match="task_serializer"):
            app.finalize()


# -- types ----------------------------------------------------------------------------


def test_wrong_types_are_one_error_at_finalize_listing_each() -> None:
    app = memory_app(worker_prefetch_multiplier="4", task_acks_late="yes",
                     worker_concurrency=True, task_queues="anything goes")
    with pytest.raises(ImproperlyConfigured) as failed:
        app.finalize()
    assert str(failed.value) == (
        "3 settings have the wrong type: "
        "setting 'worker_prefetch_multiplier' must be int, not str ('4'); "
        "setting 'task_acks_late' must be bool, not str ('yes'); "
        "setting 'worker_concurrency' must be int or None, not bool (True)")
    with pytest.raises(ImproperlyConfigured):  # not half finalized: it says so again
        app.tasks  # noqa: B018
    app.conf.update(worker_prefetch_multiplier=4, task_acks_late=True, worker_concurrency=2)
    app.finalize()
    assert app.tasks is not None


def test_one_wrong_type_is_one_line() -> None:
    app = memory_app(worker_prefetch_multiplier="4")
    with pytest.raises(ImproperlyConfigured, match=r"^setting 'worker_prefetch_multiplier' "
                                                   r"must be int, not str \('4'\)$"):
        app.finalize()


def test_after_finalize_a_wrong_type_is_refused_when_set() -> None:
    app = memory_app()
    app.finalize()
    with pytest.raises(ImproperlyConfigured, match="'broker_heartbeat' must be float, not str"):
        app.conf.broker_heartbeat = "2"
    assert app.conf.broker_heartbeat == 2.0
    app.conf.broker_heartbeat = 3  # an int is a number of seconds too
    with pytest.raises(ImproperlyConfigured, match="'worker_autoscale' must be tuple or list "
                                                   "or None, not str"):
        app.conf.worker_autoscale = "4,2"


@pytest.mark.parametrize("declared, value, problem", [
    (Setting("n", 1, int), 2, None),
    (Setting("n", 1, int), True, "must be int, not bool (True)"),
    (Setting("n", 1, int), 2.5, "must be int, not float (2.5)"),
    (Setting("n", 1, int), None, "must be int, not NoneType (None)"),
    (Setting("n", 1, int, nullable=True), None, None),
    (Setting("n", None, int), None, None),
    (Setting("s", 1.5, float), 3, None),
    (Setting("s", 1.5, float), False, "must be float, not bool (False)"),
    (Setting("b", False, bool), 0, "must be bool, not int (0)"),
    (Setting("l", [], (list, tuple)), ("a",), None),
    (Setting("l", [], (list, tuple)), "a,b", "must be list or tuple, not str ('a,b')"),
    (Setting("o", None, object), object(), None),
    (Setting("x", "", str), b"y" * 100, "must be str, not bytes (b'" + "y" * 55 + "...)"),
])
def test_the_type_vocabulary(declared: Setting, value: Any, problem: str | None) -> None:
    assert declared.problem(value) == problem


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "Bad_Name", "default": 1, "type": int}, "'Bad_Name' must be a lowercase"),
    ({"name": "_hidden", "default": 1, "type": int}, "must be a lowercase identifier"),
    ({"name": "two words", "default": 1, "type": int}, "must be a lowercase identifier"),
    ({"name": "n", "default": "1", "type": int}, "'n': its default must be int, not str"),
    ({"name": "n", "default": 1, "type": "int"}, "type must be a class"),
    ({"name": "n", "default": 1, "type": ()}, "type must be a class"),
    ({"name": "n", "default": 1, "type": int, "doc": "one\ntwo"}, "doc must be one line"),
])
def test_a_bad_declaration_is_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        Setting(**kwargs)


def test_a_setting_is_an_immutable_value() -> None:
    """What a frozen dataclass gave (Setting is hand-written to spare every
    app's creation the import of dataclasses and inspect)."""
    import copy
    import pickle

    setting = Setting("greeter_times", 1, int, "How many times.")
    with pytest.raises(AttributeError, match="immutable: cannot set 'default'"):
        setting.default = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        setting.colour = "red"  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        del setting.doc
    assert not hasattr(setting, "__dict__")
    same = Setting(name="greeter_times", default=1, type=int, doc="How many times.")
    assert setting == same and hash(setting) == hash(same) and len({setting, same}) == 1
    assert setting != Setting("greeter_times", 2, int, "How many times.")
    assert setting != ("greeter_times", 1, int, "How many times.", "corekit", False)
    assert repr(setting) == ("Setting(name='greeter_times', default=1, type=<class 'int'>, "
                             "doc='How many times.', plugin='corekit', nullable=False)")
    assert copy.deepcopy(setting) == setting == pickle.loads(pickle.dumps(setting))


def test_replace_makes_a_checked_copy() -> None:
    setting = Setting("greeter_times", 1, int)
    moved = setting.replace(plugin="greeter")
    assert (moved.plugin, setting.plugin, moved.default) == ("greeter", "corekit", 1)
    with pytest.raises(ImproperlyConfigured, match="its default must be int, not str"):
        setting.replace(default="one")
    with pytest.raises(TypeError, match="Setting has no field 'defualt'"):
        setting.replace(defualt=2)


# -- where values come from -------------------------------------------------------------


def test_the_environment_overrides_the_app_and_the_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = memory_app()
    monkeypatch.setenv("COREKIT_RESULT_BACKEND", "memory://from-env")
    assert app.conf.result_backend == "memory://from-env"
    monkeypatch.setenv("COREKIT_RESULT_BACKEND", "")  # empty: not an override
    assert app.conf.result_backend.startswith("memory://")
    monkeypatch.delenv("COREKIT_RESULT_BACKEND")
    del app.conf["result_backend"]
    assert app.conf.result_backend is None  # back to the declared default


def test_from_object_takes_settings_and_warns_about_what_looks_like_one(
        monkeypatch: pytest.MonkeyPatch, recorded: list[warnings.WarningMessage]) -> None:
    module = types.ModuleType("corekit_test_settings_module")
    module.os = os  # type: ignore[attr-defined]  # an import: not a setting
    module.helper = lambda: None  # type: ignore[attr-defined]  # nor is a function
    module.task_routes = lambda name, *a, **k: None  # type: ignore[attr-defined]  # declared
    module.worker_max_tasks_per_child = 5  # type: ignore[attr-defined]  # prefork's
    module.worker_concurency = 3  # type: ignore[attr-defined]  # a typo
    module.TASK_ACKS_LATE = True  # type: ignore[attr-defined]  # not lowercase: left out
    monkeypatch.setitem(sys.modules, module.__name__, module)
    app = memory_app()
    app.config_from_object(module.__name__)
    assert set(app.conf.changes()) - {"broker_url", "result_backend"} == {
        "task_routes", "worker_max_tasks_per_child", "worker_concurency"}
    app.finalize()
    assert unknown(recorded) == ["unknown setting 'worker_concurency' (did you mean "
                                 "'worker_concurrency'?): no part of corekit or its plugins "
                                 "reads it"]


def test_a_mutable_default_changed_through_one_app_is_that_apps_own() -> None:
    first, second = memory_app(), memory_app()
    first.conf.accept_content.append("pickle")
    first.conf.broker_transport_options["lease_timeout"] = 5
    assert first.conf.accept_content == ["json", "pickle"]
    assert second.conf.accept_content == ["json"] == DEFAULTS["accept_content"]
    assert second.conf.broker_transport_options == {} == DEFAULTS["broker_transport_options"]
    assert "accept_content" not in first.conf.changes()


def test_a_setting_name_must_be_a_string() -> None:
    app = memory_app()
    with pytest.raises(TypeError, match="a setting name is a string, not 42"):
        app.conf.update({42: "x"})


def test_result_expires_may_be_a_timedelta_as_in_celery() -> None:
    app = memory_app(result_expires=timedelta(hours=2))
    app.finalize()
    assert app.backend.expires == 7200.0


def test_the_command_line_shows_the_warning_at_the_users_line_and_fails_on_a_bad_type(
        cli: Any, tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'broker.sqlite3'}"
    (tmp_path / "proj_typo.py").write_text(
        "from corekit import Corekit\n"
        f"app = Corekit('proj', broker={url!r}, backend={url!r})\n"
        "app.conf.task_serialiser = 'json'\n")
    (tmp_path / "proj_bad.py").write_text(
        "from corekit import Corekit\n"
        f"app = Corekit('proj', broker={url!r}, backend={url!r}, worker_concurrency='2')\n")
    typo = cli("-A", "proj_typo", "call", "proj.nothing", cwd=tmp_path)
    assert typo.returncode == 0, typo.stderr
    assert (f"{tmp_path / 'proj_typo.py'}:3: UnknownSettingWarning: unknown setting "
            f"'task_serialiser' (did you mean 'task_serializer'?)") in typo.stderr
    bad = cli("-A", "proj_bad", "worker", "-P", "threads", cwd=tmp_path)
    assert bad.returncode != 0
    assert ("setting 'worker_concurrency' must be int or None, not str ('2')"
            in bad.stderr.strip().splitlines()[-1])


# -- plugins' settings ----------------------------------------------------------------


def test_a_registered_plugins_settings_are_known_to_app_conf(
        recorded: list[warnings.WarningMessage]) -> None:
    manager = manager_with(GreeterPlugin())
    url = f"memory://{uuid.uuid4().hex}"
    app = Corekit("tests", broker=url, backend=url, plugin_manager=manager, greeter_times=3)
    assert app.conf.greeter_greeting == "hello"  # before finalize: read gives the default
    assert "greeter_greeting" in app.conf and "greeter_greeting" in set(app.conf)
    app.finalize()
    assert (app.conf.greeter_greeting, app.conf.greeter_times) == ("hello", 3)
    assert unknown(recorded) == []
    declared = declared_settings(manager)["greeter_times"]
    assert (declared.plugin, declared.type, declared.doc) == (
        "GreeterPlugin", int, "How many times it says it.")
    with pytest.raises(ImproperlyConfigured, match="'greeter_times' must be int, not str"):
        app.conf.greeter_times = "3"


def test_a_plugins_setting_of_the_wrong_type_fails_finalize() -> None:
    url = f"memory://{uuid.uuid4().hex}"
    app = Corekit("tests", broker=url, backend=url, plugin_manager=manager_with(GreeterPlugin()),
                  greeter_greeting=["hi"])
    with pytest.raises(ImproperlyConfigured, match=r"'greeter_greeting' must be str, not list"):
        app.finalize()


def test_a_setting_declared_by_two_plugins_is_an_error_naming_both() -> None:
    manager = manager_with(GreeterPlugin(), ClashesWithGreeter())
    with pytest.raises(ImproperlyConfigured, match="setting 'greeter_times' is declared by "
                                                   "both plugin '(GreeterPlugin|ClashesWithGreeter)"
                                                   "' and plugin '(ClashesWithGreeter|Greeter"
                                                   "Plugin)'"):
        declared_settings(manager)
    url = f"memory://{uuid.uuid4().hex}"
    app = Corekit("tests", broker=url, backend=url, plugin_manager=manager)
    with pytest.raises(ImproperlyConfigured, match="declared by both"):
        app.finalize()


def test_a_plugin_redeclaring_a_kernel_setting_is_an_error_naming_both() -> None:
    with pytest.raises(ImproperlyConfigured, match="setting 'task_serializer' is declared by "
                                                   "both corekit and plugin 'ClashesWithKernel'"):
        declared_settings(manager_with(ClashesWithKernel()))


def test_a_plugin_must_return_setting_objects() -> None:
    with pytest.raises(ImproperlyConfigured, match="plugin 'ReturnsNames': "
                                                   "corekit_register_settings must return "
                                                   "Setting objects"):
        declared_settings(manager_with(ReturnsNames()))


def test_a_plugin_whose_declaration_fails_is_named() -> None:
    url = f"memory://{uuid.uuid4().hex}"
    app = Corekit("tests", broker=url, backend=url, plugin_manager=manager_with(DeclaresBadly()))
    with pytest.raises(ImproperlyConfigured, match=r"^plugin 'DeclaresBadly': "
                                                   r"corekit_register_settings failed: .*"
                                                   r"'badly_count': its default must be int, "
                                                   r"not str"):
        app.finalize()


def test_declared_order_is_the_kernel_first_then_plugins_by_name() -> None:
    declared = declared_settings(manager_with(GreeterPlugin()))
    names = list(declared)
    assert names[:len(KERNEL_SETTINGS)] == [s.name for s in KERNEL_SETTINGS]
    plugins = [s.plugin for s in declared.values()][len(KERNEL_SETTINGS):]
    assert plugins == sorted(plugins) and {"GreeterPlugin", "prefork"} <= set(plugins)
    assert all(s.plugin == "corekit" for s in KERNEL_SETTINGS)
    for setting in declared.values():  # the configuration reference is made of these
        assert setting.doc and setting.doc.endswith(".") and len(setting.doc) <= 100, setting


def test_the_kernel_does_not_declare_or_read_prefork_settings() -> None:
    assert not set(PREFORK_SETTINGS) & set(DEFAULTS)
    assert {name: declared_settings()[name].plugin for name in PREFORK_SETTINGS} == dict.fromkeys(
        PREFORK_SETTINGS, "prefork")
    kernel = Path(__file__).resolve().parents[1] / "corekit"
    naming = [str(path.relative_to(kernel)) for path in kernel.rglob("*.py")
              if path.name != "celery_names.py"  # Celery's names, for the hint
              and any(name in path.read_text() for name in PREFORK_SETTINGS)]
    assert naming == []


def test_the_celery_names_are_celerys() -> None:
    celery_defaults = pytest.importorskip("celery.app.defaults")
    from corekit.celery_names import CELERY_SETTING_NAMES

    celerys = {name for name, _ in celery_defaults.flatten(celery_defaults.NAMESPACES)}
    assert CELERY_SETTING_NAMES <= celerys and len(CELERY_SETTING_NAMES) > 150


# -- prefork reads its own settings ---------------------------------------------------


@pytest.fixture
def app(sqlite_app: Corekit) -> Corekit:
    return sqlite_app


def test_prefork_recycles_children_by_the_setting(app: Corekit) -> None:
    @app.task
    def whoami() -> int:
        return os.getpid()

    app.conf.worker_max_tasks_per_child = 2
    with start_worker(app, pool="prefork", concurrency=1) as worker:
        pids = [whoami.delay().get(timeout=WAIT) for _ in range(4)]
        assert worker.pool.info()["max-tasks-per-child"] == 2
    assert pids[0] == pids[1] != pids[2] == pids[3]


def test_a_worker_keyword_overrides_the_prefork_setting(app: Corekit) -> None:
    @app.task
    def whoami() -> int:
        return os.getpid()

    app.conf.worker_max_tasks_per_child = 1000
    with start_worker(app, pool="prefork", concurrency=1, max_tasks_per_child=1):
        pids = [whoami.delay().get(timeout=WAIT) for _ in range(3)]
    assert len(set(pids)) == 3


def test_prefork_autoscales_by_the_setting(app: Corekit) -> None:
    app.conf.worker_autoscale = [3, 1]
    with start_worker(app, pool="prefork", concurrency=1) as worker:
        assert worker.pool.autoscaling == (3, 1)


def test_a_bad_autoscale_setting_is_a_clear_error(app: Corekit) -> None:
    app.conf.worker_autoscale = [3]
    with pytest.raises(RuntimeError, match="failed to start") as failed:
        with start_worker(app, pool="prefork", concurrency=1):
            pass
    assert "worker_autoscale) must be (max, min), two whole numbers, not [3]" in str(
        failed.value.__cause__)


def test_other_pools_do_not_read_prefork_settings(app: Corekit) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    app.conf.worker_max_tasks_per_child = 1  # prefork's: the threads pool is not refused
    with start_worker(app, pool="threads", concurrency=1):
        assert add.delay(1, 2).get(timeout=WAIT) == 3
