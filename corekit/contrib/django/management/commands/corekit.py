"""``python manage.py corekit <command> [options]``: any corekit command
(``worker``, ``beat``, ``inspect``, ``control``, ``events``...) with the
project's Django settings loaded and its app chosen for it
(`corekit.contrib.django.plugin.django_app_path`; ``-A`` still wins)."""
from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run a corekit command (worker, beat, inspect, ...) with this project's settings."

    def run_from_argv(self, argv: list[str]) -> None:
        sys.exit(run_corekit(argv[2:], prog=f"{_prog(argv)} corekit"))

    def print_help(self, prog_name: str, subcommand: str) -> None:
        run_corekit(["--help"], prog=f"{prog_name} {subcommand}")

    def handle(self, *args: Any, **options: Any) -> None:  # call_command("corekit", ...)
        code = run_corekit(list(args), prog="corekit")
        if code:
            from django.core.management.base import CommandError

            raise CommandError(f"corekit exited with status {code}", returncode=code)


def run_corekit(argv: list[str], prog: str) -> int:
    """corekit's command line on *argv*, with ``-A`` set to the project's app
    unless *argv* gives one."""
    from corekit.cli import main
    from corekit.contrib.django.plugin import django_app_path

    if not any(a in ("-A", "--app") or a.startswith("--app=") for a in argv) and not (
            argv[:1] == ["--help"] or argv[:1] == ["-h"]):
        argv = ["-A", django_app_path(settings), *argv]
    try:
        return main(argv, prog=prog)
    except SystemExit as exc:  # argparse: --help, or usage errors
        return exc.code if isinstance(exc.code, int) else 1


def _prog(argv: list[str]) -> str:
    import os

    return os.path.basename(argv[0]) if argv else "manage.py"
