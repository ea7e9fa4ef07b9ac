"""Options a plugin adds to an existing ``corekit`` subcommand.

An option is declarative: it names its flags, its argparse keywords and the
setting it sets.  When the user gives the flag, the value lands in
``app.conf[setting]`` before the command runs, so the code that honours the
setting (a pool, a step) reads it from the configuration and no keyword is
threaded through the kernel.  This module imports nothing heavy: plugins
import it while ``corekit --help`` builds its parser.
"""
from __future__ import annotations

import argparse
from typing import Any, Mapping

from corekit.frozen import Frozen

__all__ = ["CommandOption", "positive_int", "positive_float"]


class CommandOption(Frozen):
    """``--flag VALUE`` on a subcommand, stored in the setting *setting*.

    *kwargs* are `argparse.ArgumentParser.add_argument` keywords (``type``,
    ``metavar``, ``choices``, ``action``...); ``dest`` and ``default`` are the
    option's own business and may not be given.  *pool* names the pool a
    ``worker`` option belongs to: giving the flag to a worker that runs
    another pool is an error, not a setting nobody reads.  Immutable
    (`corekit.frozen.Frozen`: ``corekit --help`` builds these and does not
    import ``dataclasses``).
    """

    __slots__ = FIELDS = ("flags", "setting", "help", "kwargs", "pool")
    flags: tuple[str, ...]
    setting: str
    help: str
    kwargs: Mapping[str, Any]
    pool: str | None

    def __init__(self, flags: tuple[str, ...] | str, setting: str, help: str,
                 kwargs: Mapping[str, Any] | None = None, pool: str | None = None) -> None:
        flags = (flags,) if isinstance(flags, str) else flags
        self._store(flags, setting, help, {} if kwargs is None else kwargs, pool)
        if not self.flags or not all(f.startswith("-") for f in self.flags):
            raise ValueError(f"option for setting {self.setting!r}: flags must start with "
                             f"'-', not {self.flags!r}")
        taken = {"dest", "default"} & set(self.kwargs)
        if taken:
            raise ValueError(f"option {self.flags[0]}: {', '.join(sorted(taken))} may not be "
                             f"given (the value goes to setting {self.setting!r})")

    @property
    def dest(self) -> str:
        """Where argparse keeps the value: named after the setting, so two
        options can never share it by accident."""
        return "setting:" + self.setting  # corekit.cli.extensions.SETTING_DEST

    def add_to(self, parser: Any) -> None:
        """Add this option to *parser* (a parser or an argument group)."""
        parser.add_argument(*self.flags, dest=self.dest, default=argparse.SUPPRESS,
                            help=self.help, **dict(self.kwargs))


def positive_int(text: str) -> int:
    """argparse ``type``: an int of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def positive_float(text: str) -> float:
    """argparse ``type``: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value
