"""Where settings come from: flags > environment > config file > code > defaults."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from corekit import Corekit
from corekit.config_sources import config_file, env_settings, from_env_text
from corekit.defaults import KERNEL_SETTINGS
from corekit.exceptions import ImproperlyConfigured, UnknownSettingWarning

SETTINGS = {s.name: s for s in KERNEL_SETTINGS}


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("COREKIT_BROKER_URL", "COREKIT_RESULT_BACKEND", "COREKIT_APP"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_pyproject_tool_table_sets_the_app_and_settings(cwd: Path) -> None:
    (cwd / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.corekit]\napp = "proj.worker:app"\n'
        'broker_url = "memory://file"\nworker_prefetch_multiplier = 2\n'
        'task_routes = {"proj.*" = {queue = "proj"}}\n')
    found = config_file()
    assert found.app == "proj.worker:app" and found.origin == "pyproject.toml [tool.corekit]"
    app = Corekit("t", broker="memory://code")
    assert app.conf.broker_url == "memory://file"  # the file wins over the code
    assert app.conf.worker_prefetch_multiplier == 2
    assert app.conf.task_routes == {"proj.*": {"queue": "proj"}}
    assert app.conf.origin("broker_url") == "pyproject.toml [tool.corekit]"
    app.conf.broker_url = "memory://later-in-code"
    assert app.conf.broker_url == "memory://file"
    app.conf.pin("broker_url", "memory://flag", "--broker")  # a flag wins over the file
    assert app.conf.broker_url == "memory://flag" and app.conf.origin("broker_url") == "--broker"


def test_corekit_toml_is_read_before_pyproject_and_a_pyproject_without_the_table_is_none(
        cwd: Path) -> None:
    (cwd / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert config_file().path is None and config_file().app is None
    (cwd / "pyproject.toml").write_text('[tool.corekit]\napp = "from_pyproject"\n')
    assert config_file().app == "from_pyproject"
    (cwd / "corekit.toml").write_text('app = "from_corekit_toml"\nworker_concurrency = 3\n')
    assert config_file().app == "from_corekit_toml"  # re-read: the directory changed
    assert Corekit("t").conf.worker_concurrency == 3


def test_environment_wins_over_the_file_and_is_typed_by_the_setting(
        cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (cwd / "corekit.toml").write_text('broker_url = "memory://file"\nworker_concurrency = 3\n')
    monkeypatch.setenv("COREKIT_BROKER_URL", "memory://env")
    monkeypatch.setenv("COREKIT_WORKER_CONCURRENCY", "8")
    monkeypatch.setenv("COREKIT_TASK_ACKS_LATE", "yes")
    monkeypatch.setenv("COREKIT_ACCEPT_CONTENT", "json,msgpack")
    monkeypatch.setenv("COREKIT_BROKER_TRANSPORT_OPTIONS", '{"prefix": "x:"}')
    app = Corekit("t")
    assert app.conf.broker_url == "memory://env"
    assert app.conf.worker_concurrency == 8
    assert app.conf.task_acks_late is True
    assert app.conf.accept_content == ["json", "msgpack"]
    assert app.conf.broker_transport_options == {"prefix": "x:"}
    assert app.conf.origin("worker_concurrency") == "COREKIT_WORKER_CONCURRENCY"
    assert "worker_concurrency" in app.conf.changes()  # `inspect conf` shows it


def test_a_plugins_setting_comes_from_the_environment_once_declared(
        cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COREKIT_BEAT_LEASE_TIMEOUT", "7.5")  # the beat plugin's setting
    app = Corekit("t", broker="memory://x")
    assert app.conf.beat_lease_timeout == 7.5
    app.finalize()
    assert app.conf.beat_lease_timeout == 7.5


@pytest.mark.parametrize("name, text, value", [
    ("worker_concurrency", "4", 4), ("worker_concurrency", "none", None),
    ("task_acks_late", "off", False), ("task_acks_late", "1", True),
    ("broker_heartbeat", "0.5", 0.5), ("broker_heartbeat", "2", 2),
    ("accept_content", '["json"]', ["json"]), ("broker_url", "redis://h:1/0", "redis://h:1/0"),
    ("broker_url", "123", "123"),  # a string setting keeps the text as it is
])
def test_environment_text_to_values(name: str, text: str, value: object) -> None:
    assert from_env_text(SETTINGS[name], "COREKIT_X", text) == value


@pytest.mark.parametrize("name, text, expected", [
    ("worker_concurrency", "four", "takes int or None"),
    ("task_acks_late", "maybe", "takes bool"),
    ("broker_transport_options", "{not json", r"takes dict \(as JSON\)"),
])
def test_bad_environment_values_are_errors_naming_the_variable(
        name: str, text: str, expected: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=expected) as info:
        from_env_text(SETTINGS[name], "COREKIT_X", text)
    assert "COREKIT_X=" in str(info.value)


def test_bad_environment_value_fails_when_the_app_is_made(
        cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COREKIT_WORKER_CONCURRENCY", "many")
    with pytest.raises(ImproperlyConfigured, match="COREKIT_WORKER_CONCURRENCY='many'"):
        Corekit("t")


def test_empty_and_non_setting_variables_are_not_settings() -> None:
    found = env_settings({"COREKIT_BROKER_URL": "", "COREKIT_APP": "proj", "COREKIT_": "x",
                          "COREKIT_NO_EXTENSIONS": "1", "OTHER": "1",
                          "COREKIT_WORKER_CONCURRENCY": "2"})
    assert found == {"worker_concurrency": ("COREKIT_WORKER_CONCURRENCY", "2")}


def test_typos_in_variables_and_file_keys_warn_with_the_closest_name(
        cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (cwd / "corekit.toml").write_text('worker_concurency = 2\n')
    monkeypatch.setenv("COREKIT_BROKER_ULR", "memory://typo")
    monkeypatch.setenv("COREKIT_SOMETHING_ELSE_ENTIRELY", "1")  # not close: not a typo
    app = Corekit("t", broker="memory://x")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app.finalize()
    messages = [str(w.message) for w in caught if w.category is UnknownSettingWarning]
    assert any("corekit.toml: unknown setting 'worker_concurency'" in m
               and "worker_concurrency" in m for m in messages), messages
    assert any("COREKIT_BROKER_ULR names no setting (did you mean COREKIT_BROKER_URL?)" in m
               for m in messages), messages
    assert not any("SOMETHING_ELSE" in m for m in messages)


@pytest.mark.parametrize("content, expected", [
    ('broker_url = "x\n', "corekit.toml is not valid TOML"),
    ('app = 3\n', "app must be a module name"),
    ('worker_concurrency = "x"\n', "corekit.toml: setting 'worker_concurrency' must be int"),
])
def test_a_bad_file_is_a_clear_error(cwd: Path, content: str, expected: str) -> None:
    (cwd / "corekit.toml").write_text(content)
    with pytest.raises(ImproperlyConfigured, match=expected):
        Corekit("t", broker="memory://x").finalize()


def test_a_file_another_program_wrote_in_another_encoding_is_a_clear_error(cwd: Path) -> None:
    (cwd / "corekit.toml").write_bytes(b'\xff\xfeapp = "proj"\n')  # UTF-16's mark
    with pytest.raises(ImproperlyConfigured, match="is not valid TOML: not UTF-8 text"):
        Corekit("t", broker="memory://x")


def test_a_removed_working_directory_holds_no_config_file(tmp_path: Path) -> None:
    code = ("import os; os.chdir(os.environ['GONE']); os.rmdir(os.environ['GONE'])\n"
            "from corekit import Corekit\n"
            "print(Corekit('t', broker='memory://x').conf.broker_url)")
    gone = tmp_path / "gone"
    gone.mkdir()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "GONE": str(gone)}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "memory://x"


def test_a_bad_value_pinned_after_finalize_is_refused(cwd: Path) -> None:
    app = Corekit("t", broker="memory://x")
    app.finalize()
    with pytest.raises(ImproperlyConfigured, match="--concurrency: setting 'worker_concurrency'"):
        app.conf.pin("worker_concurrency", "x", "--concurrency")


def test_results_follow_the_broker_unless_a_backend_is_set(cwd: Path) -> None:
    assert Corekit("t", broker="memory://a").conf.backend == "memory://a"
    assert Corekit("t", broker="sqlite:///tmp/b.db").conf.backend == "sqlite:///tmp/b.db"
    assert Corekit("t", broker="amqp://u:p@h//").conf.backend == "rpc://"
    assert Corekit("t", broker="memory://a", backend="memory://r").conf.backend == "memory://r"
    assert Corekit("t").conf.backend == "sqlite://"  # the embedded default for both
    assert Corekit("t", broker="nosuch://x").conf.backend == "sqlite://"


def test_plugin_flag_gives_the_broker_only_when_none_is_configured(
        cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from corekit.cli import app_from_args, build_parser

    (cwd / "withbroker.py").write_text(
        'from corekit import Corekit\napp = Corekit("w", broker="memory://code")\n')
    (cwd / "nobroker.py").write_text('from corekit import Corekit\napp = Corekit("n")\n')
    monkeypatch.syspath_prepend(str(cwd))
    parser = build_parser()

    def app_for(*argv: str) -> Corekit:  # each command a new process: the module anew
        for name in ("withbroker", "nobroker"):
            sys.modules.pop(name, None)
        return app_from_args(parser.parse_args([*argv, "purge", "-f"]))

    assert app_for("-A", "withbroker", "--plugin", "redis").conf.broker == "memory://code"
    app = app_for("-A", "nobroker", "--plugin", "redis")
    assert app.conf.broker == "redis://localhost:6379/0" and app.conf.backend == app.conf.broker
    assert app.conf.origin("broker_url") == "--plugin redis"
    app = app_for("-A", "nobroker", "--plugin", "amqp", "-b", "memory://flag")
    assert app.conf.broker == "memory://flag" and app.conf.backend == "memory://flag"
    app = app_for("-A", "nobroker", "--plugin", "redis", "--result-backend", "memory://r")
    assert app.conf.backend == "memory://r"
    monkeypatch.setenv("COREKIT_BROKER_URL", "memory://env")
    assert app_for("-A", "nobroker", "--plugin", "redis").conf.broker == "memory://env"
