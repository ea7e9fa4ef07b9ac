"""Declared settings: the kernel's and the plugins' (``corekit_register_settings``)
are what ``app.conf`` knows.  A declaration is checked when it is made and
is an immutable value; a name declared twice is an error naming both
declarers; prefork's settings belong to prefork, which reads them.
tests/test_app_conf.py checks what ``app.conf`` does with them.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Sequence

import pytest

from corekit import Corekit
from corekit.config import DEFAULTS, Setting, declared_settings
from corekit.defaults import KERNEL_SETTINGS
from corekit.exceptions import ImproperlyConfigured
from corekit.hookspecs import hookimpl
from corekit.testing import start_worker
from settings_helpers import GreeterPlugin, manager_with

WAIT = 30.0
PREFORK_SETTINGS = ("worker_max_tasks_per_child", "worker_max_memory_per_child",
                    "worker_autoscale")


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


# -- a declaration --------------------------------------------------------------------


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


# -- plugins' settings ----------------------------------------------------------------


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


def test_an_unknown_setting_in_python_dash_c_warns_instead_of_crashing() -> None:
    """``python -c``: __main__'s loader cannot give source lines, and
    warn_explicit with its globals raised ImportError out of finalize."""
    import subprocess
    import sys

    code = ("from corekit import Corekit\n"
            "app = Corekit('x', broker='memory://', beat_sync_every=3)\n"
            "app.finalize()\nprint('finalized')")
    out = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "finalized" in out.stdout
    assert "'beat_sync_every' is a Celery setting not used by corekit" in out.stderr
