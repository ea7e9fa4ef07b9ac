"""The plugin manager is lazy and cheap (issue 13): reading entry points
imports nothing, a query imports the light plugin modules only, heavy code
(clients, pool and transport implementations) is imported when its kind and
name are asked for, and package metadata is read by ``corekit plugins``
alone.  It still refuses a name two plugins provide and names a plugin that
fails to import.

What a process imported is read from ``sys.modules`` in a fresh subprocess,
so nothing another test imported counts."""
from __future__ import annotations

import importlib.metadata as md
import json
import subprocess
import sys
from typing import Any

import pytest

from corekit.exceptions import ImproperlyConfigured, PluginNotFound
from corekit.hookspecs import hookimpl
from corekit.pluginmanager import PluginInfo, PluginManager
from helpers import run_cli

#: Modules that only the plugin asked for by name may import.
HEAVY = ("redis", "hiredis", "amqp", "kombu", "eventlet", "greenlet", "msgpack", "zstandard",
         "asyncio", "sqlite3",
         "corekit.plugins.redis.transport", "corekit.plugins.redis.backend",
         "corekit.plugins.amqp.transport", "corekit.plugins.amqp.rpc",
         "corekit.plugins.sqlite.transport", "corekit.plugins.sqlite.backend",
         "corekit.plugins.memory.transport", "corekit.plugins.prefork.pool",
         "corekit.plugins.eventlet_pool.pool", "corekit.plugins.asyncio_pool.pool",
         "corekit.plugins.threads_pool.pool", "corekit.plugins.solo_pool.pool")

PROBE = '''
import contextlib, io, json, sys
import importlib.metadata as md

read = []
original = md.PathDistribution.read_text
def read_text(self, filename):
    read.append(filename)
    return original(self, filename)
md.PathDistribution.read_text = read_text

with contextlib.redirect_stdout(io.StringIO()):
{body}
json.dump({{"modules": sorted(sys.modules), "read": read}}, sys.stderr)
'''


def probe(body: str) -> dict[str, Any]:
    """Run *body* in a fresh interpreter; what it imported and which
    distribution files it read."""
    code = PROBE.format(body="\n".join("    " + line for line in body.strip().splitlines()))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stderr.strip().splitlines()[-1])  # type: ignore[no-any-return]


def heavy(modules: list[str], allowed: tuple[str, ...] = ()) -> list[str]:
    return [m for m in HEAVY if m in modules and m not in allowed]


def test_making_a_manager_imports_and_reads_nothing() -> None:
    seen = probe("from corekit.pluginmanager import PluginManager\nPluginManager()")
    assert [m for m in seen["modules"] if m.startswith("corekit.plugins")] == []
    assert seen["read"] == []  # not even entry_points.txt


def test_help_imports_no_heavy_module_and_reads_no_metadata() -> None:
    seen = probe("from corekit.cli import main\ntry:\n    main(['--help'])\n"
                 "except SystemExit:\n    pass")
    assert heavy(seen["modules"]) == []
    assert "corekit.plugins.sqlite" in seen["modules"]  # the light modules were asked
    assert "METADATA" not in seen["read"] and "PKG-INFO" not in seen["read"]


def test_app_on_sqlite_imports_only_the_sqlite_implementation(tmp_path: Any) -> None:
    url = f"sqlite://{tmp_path / 'db.sqlite3'}"
    seen = probe(f'''
from corekit import Corekit
app = Corekit("proj", broker={url!r}, backend={url!r})
@app.task
def add(x, y):
    return x + y
app.tasks
app.plugins.get("transports", "sqlite")
app.plugins.get("result_backends", "sqlite")
''')
    assert heavy(seen["modules"], allowed=("sqlite3", "corekit.plugins.sqlite.transport",
                                           "corekit.plugins.sqlite.backend")) == []
    assert "corekit.plugins.sqlite.transport" in seen["modules"]
    assert "METADATA" not in seen["read"]


def test_a_pool_asked_by_name_imports_that_pool_only() -> None:
    seen = probe('''
from corekit.pluginmanager import default_manager
pm = default_manager()
assert sorted(pm.registry("pools")) == ["asyncio", "eventlet", "prefork", "solo", "threads"]
assert pm.get("pools", "threads").__name__ == "ThreadsPool"
''')
    assert heavy(seen["modules"], allowed=("corekit.plugins.threads_pool.pool",)) == []


def test_plugins_command_reads_distribution_and_version() -> None:
    out = run_cli("plugins", "--json")
    assert out.returncode == 0, out.stderr
    by_name = {p["name"]: p for p in json.loads(out.stdout)}
    assert by_name["sqlite"]["distribution"] == "corekit"
    assert by_name["sqlite"]["version"] == md.version("corekit")
    assert by_name["redis"]["provides"]["transports"] == ["redis", "rediss", "redis+socket"]


# -- in-process: clashes, broken plugins, references ------------------------------


class Spool:
    @staticmethod
    @hookimpl
    def corekit_register_transports() -> dict[str, Any]:
        return {"spool": "json:JSONDecoder"}  # any importable class will do


class OtherSpool:
    @staticmethod
    @hookimpl
    def corekit_register_transports() -> dict[str, Any]:
        return {"spool": object}


class Broken:
    @staticmethod
    @hookimpl
    def corekit_register_pools() -> dict[str, Any]:
        return {"leaky": "corekit_no_such_module_anywhere:LeakyPool"}


def manager(*plugins: object) -> PluginManager:
    pm = PluginManager(entry_points=[])
    for plugin in plugins:
        pm.register(plugin, PluginInfo(type(plugin).__name__, __name__, "tests", "0"))
    return pm


def test_a_reference_is_imported_on_first_lookup() -> None:
    import json as json_module

    pm = manager(Spool())
    assert list(pm.registry("transports")) == ["spool"]
    assert pm.get("transports", "spool") is json_module.JSONDecoder
    assert pm.registry("transports").owner("spool") == "Spool"


def test_a_name_two_plugins_provide_is_an_error_naming_both() -> None:
    pm = manager(Spool(), OtherSpool())
    with pytest.raises(ImproperlyConfigured, match="'spool' is provided by both plugin "
                                                   "'(Spool|OtherSpool)' and plugin"):
        pm.get("transports", "spool")


def test_a_reference_that_fails_to_import_names_its_plugin() -> None:
    pm = manager(Broken())
    assert list(pm.registry("pools")) == ["leaky"]  # listing imports nothing
    with pytest.raises(ImproperlyConfigured, match=r"pool 'leaky' of plugin 'Broken' "
                                                   r"\(corekit_no_such_module_anywhere:"
                                                   r"LeakyPool\) failed to import"):
        pm.get("pools", "leaky")


def test_a_plugin_module_that_fails_to_import_names_itself() -> None:
    broken = md.EntryPoint(name="halfdone", value="corekit_no_such_plugin_module",
                           group="corekit.plugins")
    pm = PluginManager(entry_points=[broken])
    for query in (lambda: pm.registry("transports"), lambda: pm.hook,
                  lambda: pm.require("halfdone")):
        with pytest.raises(ImproperlyConfigured,
                           match="plugin 'halfdone' .corekit_no_such_plugin_module. "
                                 "failed to import"):
            query()  # every time, not only the first


def test_unknown_names_and_kinds_are_clear_errors() -> None:
    pm = manager(Spool())
    with pytest.raises(PluginNotFound, match=r"no transport called 'spol' is installed "
                                             r"\(installed: spool\)"):
        pm.get("transports", "spol")
    with pytest.raises(PluginNotFound, match="plugin 'nope' is not installed"):
        pm.require("nope")
    with pytest.raises(ValueError, match="unknown plugin kind 'transport'"):
        pm.registry("transport")


def test_require_finds_an_installed_plugin_and_its_provides() -> None:
    pm = PluginManager()
    info = pm.require("sqlite")
    assert info.provides["transports"] == ["sqlite"]
    assert info.provides["result_backends"] == ["sqlite"]
    assert info.distribution == "corekit"


# -- pluggy is built for lifecycle calls only ---------------------------------------


def test_collected_hooks_are_read_without_pluggy_and_hook_builds_it() -> None:
    seen = probe('''
import sys
from corekit.pluginmanager import default_manager
pm = default_manager()
pm.registry("transports"); pm.require("sqlite").provides
assert "prefork" in [i.plugin_name for i in pm.implementations("corekit_register_settings")]
assert pm.implementations("corekit_app_configure") == []
assert "pluggy" not in sys.modules, "a collected hook imported pluggy"
pm.hook.corekit_app_configure(app=None)
''')
    assert "pluggy" in seen["modules"]


class Configures:
    def __init__(self) -> None:
        self.apps: list[Any] = []

    @hookimpl
    def corekit_app_configure(self, app: Any) -> None:
        self.apps.append(app)


def test_a_plugin_registered_after_pluggy_was_built_is_called_too() -> None:
    first, second = Configures(), Configures()
    pm = manager(first)
    assert pm.implements("corekit_app_configure")
    pm.hook.corekit_app_configure(app="one")
    pm.register(second, PluginInfo("second", __name__, "tests", "0"))
    pm.hook.corekit_app_configure(app="two")
    assert (first.apps, second.apps) == (["one", "two"], ["two"])
    assert [impl.plugin_name for impl in pm.implementations("corekit_app_configure")] == [
        "Configures", "second"]


def test_an_implementation_pluggy_would_refuse_is_refused_when_registered() -> None:
    class WantsTheApp:
        @staticmethod
        @hookimpl
        def corekit_register_transports(app: Any) -> dict[str, Any]:
            return {}

    with pytest.raises(ImproperlyConfigured, match="plugin 'WantsTheApp': its "
                                                   "corekit_register_transports takes app"):
        manager(WantsTheApp())
