"""corekit's ``@hookspec`` / ``@hookimpl`` are pluggy's markers without
pluggy (`corekit.hookmarkers`), and `corekit.hookimpls` reads what they mark
as pluggy's ``register`` does, so the two must agree: on the attribute each
option sets, on what pluggy recognizes and dispatches, on the order of
implementations and on which implementation is refused."""
from __future__ import annotations

from typing import Any, Callable

import pluggy
import pytest

from corekit import hookspecs
from corekit.exceptions import ImproperlyConfigured
from corekit.hookimpls import add_in_call_order, read_hookimpls
from corekit.hookmarkers import HookimplMarker, HookspecMarker
from corekit.hookspecs import hookimpl, hookspec

IMPL_OPTIONS: list[dict[str, Any]] = [
    {}, {"tryfirst": True}, {"trylast": True}, {"wrapper": True}, {"hookwrapper": True},
    {"optionalhook": True}, {"specname": "corekit_app_configure"},
]
SPEC_OPTIONS: list[dict[str, Any]] = [
    {}, {"firstresult": True}, {"historic": True}, {"warn_on_impl": UserWarning("old")},
    {"warn_on_impl_args": {"app": UserWarning("old arg")}},
]


def marked(marker: Callable[..., Any], options: dict[str, Any]) -> Callable[..., Any]:
    def function(app: Any) -> None:
        """A hook function."""
    return marker(**options)(function) if options else marker(function)


@pytest.mark.parametrize("options", IMPL_OPTIONS, ids=lambda o: ",".join(o) or "bare")
def test_hookimpl_sets_what_pluggys_marker_sets(options: dict[str, Any]) -> None:
    ours = marked(hookimpl, options)
    theirs = marked(pluggy.HookimplMarker("corekit"), options)
    assert ours.corekit_impl == theirs.corekit_impl  # type: ignore[attr-defined]
    assert pluggy.PluginManager("corekit").parse_hookimpl_opts(
        type("Plugin", (), {"corekit_app_configure": staticmethod(ours)}),
        "corekit_app_configure") == theirs.corekit_impl  # type: ignore[attr-defined]


@pytest.mark.parametrize("options", SPEC_OPTIONS, ids=lambda o: ",".join(o) or "bare")
def test_hookspec_sets_what_pluggys_marker_sets(options: dict[str, Any]) -> None:
    ours = marked(hookspec, options)
    theirs = marked(pluggy.HookspecMarker("corekit"), options)
    assert ours.corekit_spec == theirs.corekit_spec  # type: ignore[attr-defined]


def test_each_marked_function_gets_its_own_options() -> None:
    decorate = hookimpl(tryfirst=True)
    first, second = decorate(lambda: None), decorate(lambda: None)
    first.corekit_impl["tryfirst"] = False
    assert second.corekit_impl["tryfirst"] is True


def test_a_historic_firstresult_spec_is_refused_as_by_pluggy() -> None:
    with pytest.raises(ValueError, match="historic firstresult"):
        HookspecMarker("corekit")(firstresult=True, historic=True)


def test_pluggy_dispatches_through_our_markers_with_every_option() -> None:
    """Specs marked by ours, implementations by ours: pluggy registers them,
    honours tryfirst/trylast/specname/optionalhook and both kinds of wrapper."""
    spec, impl = HookspecMarker("demo"), HookimplMarker("demo")

    class Specs:
        @spec(firstresult=False)
        def demo_collect(self, seen: list[str]) -> list[str]:  # type: ignore[empty-body]
            """Every implementation appends its name."""

    calls: list[str] = []

    class Plugin:
        @impl(tryfirst=True)
        def demo_collect(self, seen: list[str]) -> str:
            seen.append("first")
            return "first"

        @impl(trylast=True, specname="demo_collect")
        def last(self, seen: list[str]) -> str:
            seen.append("last")
            return "last"

        @impl(wrapper=True, specname="demo_collect")
        def new_wrapper(self, seen: list[str]) -> Any:
            calls.append("wrapper before")
            result = yield
            calls.append(f"wrapper saw {result}")
            return result

        @impl(hookwrapper=True, specname="demo_collect")
        def old_wrapper(self, seen: list[str]) -> Any:
            outcome = yield
            calls.append(f"hookwrapper saw {outcome.get_result()}")

        @impl(optionalhook=True)
        def demo_not_specified(self) -> None:
            """pluggy accepts it: optionalhook."""

    manager = pluggy.PluginManager("demo")
    manager.add_hookspecs(Specs)
    manager.register(Plugin(), name="plugin")
    manager.check_pending()  # optionalhook: no error for the unspecified one
    seen: list[str] = []
    assert manager.hook.demo_collect(seen=seen) == ["first", "last"]
    assert seen == ["first", "last"]
    assert "wrapper before" in calls
    assert "hookwrapper saw ['first', 'last']" in calls


# -- reading implementations without pluggy ------------------------------------------


def plain(name: str, **options: Any) -> Callable[[], None]:
    def function() -> None:
        """An implementation."""
    function.__name__ = function.__qualname__ = name
    return hookimpl(**options)(function) if options else hookimpl(function)


class Namespace:
    def __init__(self, **functions: Callable[..., Any]) -> None:
        self.__dict__.update(functions)


def wrapper(name: str, **options: Any) -> Callable[[], Any]:
    def function() -> Any:
        yield
    function.__name__ = name
    return hookimpl(**options)(function)


def test_implementations_come_in_pluggys_order() -> None:
    """Registration order, trylast ones in front, tryfirst ones behind,
    wrappers after all of them: what pluggy's get_hookimpls() gives."""
    hook = "corekit_register_settings"
    plugins = [
        ("a", Namespace(corekit_register_settings=plain(hook))),
        ("b", Namespace(corekit_register_settings=plain(hook, tryfirst=True))),
        ("c", Namespace(corekit_register_settings=plain(hook, trylast=True))),
        ("d", Namespace(corekit_register_settings=wrapper(hook, wrapper=True))),
        ("e", Namespace(corekit_register_settings=plain(hook))),
        ("f", Namespace(corekit_register_settings=wrapper(hook, hookwrapper=True,
                                                          tryfirst=True))),
        ("g", Namespace(corekit_register_settings=plain(hook, trylast=True))),
        ("h", Namespace(corekit_register_settings=plain(hook, tryfirst=True))),
        ("i", Namespace(corekit_register_settings=wrapper(hook, wrapper=True, trylast=True))),
    ]
    manager = pluggy.PluginManager("corekit")
    manager.add_hookspecs(hookspecs)
    ours: list[Any] = []
    for name, plugin in plugins:
        manager.register(plugin, name=name)
        for impl in read_hookimpls(plugin, name):
            add_in_call_order(ours, impl)
    theirs = manager.hook.corekit_register_settings.get_hookimpls()
    assert [impl.plugin_name for impl in ours] == [impl.plugin_name for impl in theirs]
    assert [impl.plugin_name for impl in ours] == ["g", "c", "a", "e", "b", "h", "i", "d", "f"]


def test_specname_and_unmarked_functions_are_read_as_pluggy_reads_them() -> None:
    class Plugin:
        @hookimpl(specname="corekit_register_settings")
        def my_settings(self) -> list[Any]:
            return []

        def corekit_register_transports(self) -> dict[str, Any]:  # not marked: no hook
            return {"nope": object}

        corekit_register_pools = {"marked": "but not a routine"}

    plugin = Plugin()
    pm = pluggy.PluginManager("corekit")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, name="plugin")
    found = read_hookimpls(plugin, "plugin")
    assert [(impl.hook_name, impl.function) for impl in found] == [
        ("corekit_register_settings", plugin.my_settings)]
    assert [impl.function for impl in pm.hook.corekit_register_settings.get_hookimpls()] == [
        plugin.my_settings]
    assert pm.hook.corekit_register_transports.get_hookimpls() == []


def test_a_plugin_marked_with_pluggys_own_marker_is_read_too() -> None:
    theirs = pluggy.HookimplMarker("corekit")
    plugin = Namespace(corekit_register_settings=theirs(lambda: []))
    assert [impl.hook_name for impl in read_hookimpls(plugin, "p")] == [
        "corekit_register_settings"]


class NeedsAnArgument:
    @hookimpl
    def corekit_register_settings(self, app: Any) -> list[Any]:
        return []


class TakesWhatTheHookPasses:
    @hookimpl
    def corekit_app_configure(self, app: Any) -> None: ...

    @hookimpl
    def corekit_worker_ready(self) -> None: ...  # fewer than passed: fine

    @hookimpl
    def corekit_register_settings(self, optional: int = 3) -> list[Any]:
        return []


def test_an_implementation_needing_an_argument_the_hook_does_not_pass_is_refused() -> None:
    """pluggy refuses it at registration; so does the reader, naming the plugin."""
    pm = pluggy.PluginManager("corekit")
    pm.add_hookspecs(hookspecs)
    with pytest.raises(pluggy.PluginValidationError):
        pm.register(NeedsAnArgument(), name="needy")
    with pytest.raises(ImproperlyConfigured, match=r"plugin 'needy': its "
                                                   r"corekit_register_settings takes app, "
                                                   r"which the hook does not pass \(it passes "
                                                   r"no argument"):
        read_hookimpls(NeedsAnArgument(), "needy")
    fine = TakesWhatTheHookPasses()
    pm.register(fine, name="fine")
    assert sorted(impl.hook_name for impl in read_hookimpls(fine, "fine")) == [
        "corekit_app_configure", "corekit_register_settings", "corekit_worker_ready"]


@hookimpl(specname="corekit_app_configure")
def configure_with_self(self: Any) -> None:
    """A module's function whose first argument is a real one, called self."""


def test_self_is_left_out_of_methods_only_as_pluggy_does() -> None:
    module_like = Namespace(configure=configure_with_self)
    pm = pluggy.PluginManager("corekit")
    pm.add_hookspecs(hookspecs)
    with pytest.raises(pluggy.PluginValidationError):
        pm.register(module_like, name="odd")
    with pytest.raises(ImproperlyConfigured, match="takes self, which the hook"):
        read_hookimpls(module_like, "odd")
