"""Shared by the tests of what a plugin adds through hooks alone
(test_plugin_bootsteps.py, test_lifecycle_hooks.py, test_plugin_cli.py):
a plugin manager holding the installed plugins plus a test's own, as an
entry point would register them (tests/conftest.py's ``make_app`` makes an
app on it)."""
from __future__ import annotations

import importlib.metadata as md

from corekit.pluginmanager import ENTRY_POINT_GROUP, PluginInfo, PluginManager


def manager_with(*plugins: tuple[str, object], without: tuple[str, ...] = ()) -> PluginManager:
    """The installed plugins (but those named in *without*) plus *plugins*."""
    eps = [ep for ep in md.entry_points(group=ENTRY_POINT_GROUP) if ep.name not in without]
    manager = PluginManager(eps)
    assert manager.plugins  # the installed ones load first, as they would
    for name, plugin in plugins:
        manager.register(plugin, PluginInfo(name, f"tests.{name}", "tests", "0"))
    return manager
