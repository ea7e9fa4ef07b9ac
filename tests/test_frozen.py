"""`corekit.frozen.Frozen` gives `Setting` and `CommandOption` what a frozen
dataclass gave them (they are built at every app creation and ``corekit
--help``, which no longer import ``dataclasses``); tests/test_settings.py
checks the same of `Setting`."""
from __future__ import annotations

import copy
import pickle

import pytest

from corekit.cli.options import CommandOption, positive_int
from corekit.frozen import Frozen


def option(**changes: object) -> CommandOption:
    fields = {"flags": ("--audit-label",), "setting": "spool_audit_label",
              "help": "a label", "kwargs": {"metavar": "LABEL"}, "pool": None}
    return CommandOption(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_command_option_cannot_be_changed() -> None:
    made = option()
    with pytest.raises(AttributeError, match="CommandOption is immutable: cannot set 'pool'"):
        made.pool = "prefork"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="cannot delete 'help'"):
        del made.help
    with pytest.raises(AttributeError):
        made.extra = 1  # type: ignore[attr-defined]
    assert made.pool is None and not hasattr(made, "__dict__")


def test_fields_make_equality_repr_and_copies() -> None:
    made = option()
    assert made == option() and made != option(pool="prefork") and made != object()
    assert repr(made) == ("CommandOption(flags=('--audit-label',), setting='spool_audit_label', "
                          "help='a label', kwargs={'metavar': 'LABEL'}, pool=None)")
    assert copy.deepcopy(made) == made == pickle.loads(pickle.dumps(made))
    with pytest.raises(TypeError, match="unhashable"):
        hash(made)  # a dict field, as with a frozen dataclass


def test_defaults_and_a_single_flag() -> None:
    made = CommandOption("--times", "times_setting", "how many", {"type": positive_int})
    assert (made.flags, made.kwargs, made.pool) == (("--times",), {"type": positive_int}, None)
    assert CommandOption(("--x",), "x", "x").kwargs == {}
    assert CommandOption(("--x",), "x", "x").kwargs is not CommandOption(("--x",), "x", "x").kwargs


def test_replace_goes_through_init_and_its_checks() -> None:
    made = option()
    assert made.replace(pool="prefork").pool == "prefork" and made.pool is None
    with pytest.raises(ValueError, match="flags must start with '-'"):
        made.replace(flags=("audit",))
    with pytest.raises(TypeError, match="CommandOption has no field 'flag'"):
        made.replace(flag="--y")


def test_a_subclass_must_store_every_field() -> None:
    class Pair(Frozen):
        __slots__ = FIELDS = ("left", "right")

        def __init__(self, left: int, right: int) -> None:
            self._store(left)

    with pytest.raises(ValueError):  # zip(strict=True): a field forgotten is loud
        Pair(1, 2)
