"""``app.conf`` against the declared settings: an unknown key warns once
with the closest name, at the line that set it; a wrong type is an error
when the app finalizes, and when set after; values come from the
environment, the app and the defaults; a plugin's settings are known as the
kernel's are.  tests/test_settings.py checks the declarations themselves.
"""
from __future__ import annotations

import os
import sys
import types
import uuid
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest

from corekit import Corekit
from corekit.config import DEFAULTS, UnknownSettingWarning, declared_settings
from corekit.exceptions import ImproperlyConfigured
from settings_helpers import GreeterPlugin, manager_with


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
    app = memory_app(worker_state_db="/var/run/celery/state", beat_sync_every=5,
                     worker_autoscaler="celery.worker.autoscale:Autoscaler")
    app.finalize()
    assert sorted(unknown(recorded)) == [
        "setting 'beat_sync_every' is a Celery setting not used by corekit: it has no effect",
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


# -- where values come from -------------------------------------------------------------


def test_the_environment_overrides_the_app_and_the_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COREKIT_RESULT_BACKEND", "memory://from-env")
    app = memory_app()  # the environment is read when the app is made
    assert app.conf.result_backend == "memory://from-env"
    app.conf.result_backend = "memory://from-code"  # the deployment wins over the code
    assert app.conf.result_backend == "memory://from-env"
    assert app.conf.origin("result_backend") == "COREKIT_RESULT_BACKEND"
    monkeypatch.setenv("COREKIT_RESULT_BACKEND", "")  # empty: not an override
    app = memory_app()
    assert app.conf.result_backend.startswith("memory://")
    assert app.conf.origin("result_backend") == "code"
    del app.conf["result_backend"]
    assert app.conf.result_backend is None  # back to the declared default
    assert app.conf.origin("result_backend") == "default"


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
    typo = cli("-A", "proj_typo", "call", "proj.nothing", "--unregistered", cwd=tmp_path)
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
