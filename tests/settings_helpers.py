"""Shared by tests/test_settings.py and tests/test_app_conf.py: a
third-party plugin declaring settings, and a plugin manager holding only
the plugins a test gives it."""
from __future__ import annotations

from typing import Sequence

from corekit.config import Setting
from corekit.hookspecs import hookimpl
from corekit.pluginmanager import PluginInfo, PluginManager


class GreeterPlugin:
    """A third-party plugin that declares two settings."""

    @staticmethod
    @hookimpl
    def corekit_register_settings() -> Sequence[Setting]:
        return [Setting("greeter_greeting", "hello", str, "What the greeter says."),
                Setting("greeter_times", 1, int, "How many times it says it.")]


def manager_with(*plugins: object) -> PluginManager:
    manager = PluginManager()
    for plugin in plugins:
        name = type(plugin).__name__
        manager.register(plugin, PluginInfo(name, __name__, "tests", "0"))
    return manager
