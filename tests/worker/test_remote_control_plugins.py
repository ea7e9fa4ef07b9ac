"""Remote control commands a plugin adds (``corekit_register_control_commands``):
answered by live workers on SQLite, Redis and RabbitMQ like the built-in
ones, described for command lines, and never replacing a built-in one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from corekit import Corekit
from corekit.exceptions import ImproperlyConfigured
from corekit.hookspecs import hookimpl
from corekit.pluginmanager import PluginInfo, PluginManager
from corekit.testing import start_worker
from corekit.worker.commands import ControlContext, commands_for, inspect_command, ok
from remote_control_helpers import TIMEOUT

pytestmark = pytest.mark.timeout(120)


# -- commands from plugins ----------------------------------------------------------------
@inspect_command(signature="[name]", args=[("name", str)])
def greet(ctx: ControlContext, name: str = "world", **kwargs: Any) -> dict[str, str]:
    """Say hello from a worker."""
    return ok(f"hello {name} from {ctx.hostname} ({len(ctx.consumer.queues)} queue)")


def queue_names(ctx: ControlContext) -> list[str]:
    """The queues this worker consumes (an undecorated command)."""
    return list(ctx.consumer.queues)


class GreeterPlugin:
    """A plugin as a third-party package would write it."""

    @staticmethod
    @hookimpl
    def corekit_register_control_commands() -> dict[str, Any]:
        return {"greet": greet, "queue_names": queue_names}


class ClashingPlugin:
    @staticmethod
    @hookimpl
    def corekit_register_control_commands() -> dict[str, Any]:
        return {"ping": greet}


def app_with(plugin: object, url: str, backend: str | None = None) -> Corekit:
    manager = PluginManager()
    manager.register(plugin, PluginInfo(type(plugin).__name__, __name__, "tests", "0"))
    return Corekit("tests", broker=url, backend=backend or url, broker_heartbeat=0.2,
                   broker_lease_timeout=2.0, plugin_manager=manager)


@pytest.fixture(params=["sqlite", "redis", "amqp"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'broker.sqlite3'}"
    return str(request.getfixturevalue(f"{request.param}_url"))


def test_a_plugin_command_answers_broadcast(broker_url: str, tmp_path: Path) -> None:
    app = app_with(GreeterPlugin(), broker_url,
                   backend=f"sqlite://{tmp_path / 'results.sqlite3'}")
    try:
        assert app.plugins.plugins["GreeterPlugin"].provides == {
            "control_commands": ["greet", "queue_names"]}
        with start_worker(app) as worker:
            me = worker.hostname
            replies = app.control.broadcast("greet", {"name": "operator"}, destination=[me],
                                            reply=True, timeout=TIMEOUT)
            assert replies == [{me: {"ok": f"hello operator from {me} (1 queue)"}}]
            assert app.control.broadcast("queue_names", destination=[me], reply=True,
                                         timeout=TIMEOUT) == [{me: ["celery"]}]
            assert app.control.inspect(destination=[me], timeout=TIMEOUT)._request(
                "greet") == {me: {"ok": f"hello world from {me} (1 queue)"}}
    finally:
        app.close()


def test_plugin_commands_are_described_for_command_lines(tmp_path: Path) -> None:
    app = app_with(GreeterPlugin(), f"sqlite://{tmp_path / 'db.sqlite3'}")
    commands = commands_for(app)
    assert commands["greet"].type == "inspect" and commands["greet"].signature == "[name]"
    assert commands["greet"].help == "Say hello from a worker."
    assert commands["queue_names"].type == "control"
    assert commands["queue_names"].help == "The queues this worker consumes (an undecorated " \
                                           "command)."
    assert commands["rate_limit"].args == (("task_name", str), ("rate_limit", str))
    assert commands["dump_conf"] is commands["conf"]
    app.close()


def test_a_plugin_may_not_replace_a_builtin_command(tmp_path: Path) -> None:
    app = app_with(ClashingPlugin(), f"sqlite://{tmp_path / 'db.sqlite3'}")
    with pytest.raises(ImproperlyConfigured, match="'ping' has the name of a built-in"):
        app.Worker(pool="solo").setup()
    app.close()
