"""`CorekitParser`: the argument parser of ``corekit`` and of each of its
subcommands (plugins' too: subparsers are made with the parser's class).

What it changes from argparse's:

- no abbreviations: ``--conc 3`` is an error, not ``--concurrency 3``
  (a flag a later version adds could silently change what a script meant);
- an option the subcommand does not take is reported by that subcommand,
  with its usage and the closest option it has (``--concurency``: "did
  you mean --concurrency?"), not by ``corekit`` with the top-level usage;
- a missing command lists the commands.
"""
from __future__ import annotations

import argparse
import difflib
from typing import Any, NoReturn, Sequence


class CorekitParser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None
                         ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}{self.suggestion(extras)}")
        return parsed, extras

    def suggestion(self, extras: Sequence[str]) -> str:
        """`` (did you mean --x?)`` for the first unknown option like one of ours."""
        for extra in extras:
            if extra.startswith("-"):
                given = extra.split("=", 1)[0]
                options = sorted(self._option_string_actions)
                # an abbreviation (not accepted) first, then a misspelling
                close = [o for o in options if o.startswith("--") and o.startswith(given)] \
                    or difflib.get_close_matches(given, options, n=1, cutoff=0.6)
                if close:
                    return f" (did you mean {' or '.join(close[:3])}?)"
        return ""

    def commands(self) -> list[str]:
        return [name for action in self._actions
                if isinstance(action, argparse._SubParsersAction)
                for name in action.choices]

    def error(self, message: str) -> NoReturn:
        commands = self.commands()
        if commands and "required: COMMAND" in message:
            message = f"{message} (one of: {', '.join(commands)})"
        super().error(message)
