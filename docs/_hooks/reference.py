"""MkDocs hook: the reference pages are generated from the code at build time.

A page asks for a reference with a marker line (``<!-- reference: hooks -->``,
``settings`` or ``cli``); the marker is replaced by Markdown built from
`corekit.hookspecs`, `corekit.settings.declared_settings()` and `corekit.cli.build_parser()`.
Nothing generated is committed and no table is kept by hand, so the pages
cannot drift from the code.
"""
from __future__ import annotations

import argparse
import inspect
import re
from typing import Any, Callable, Iterator

MARKER = re.compile(r"^<!-- reference: (\w+) -->$", re.MULTILINE)

#: Options every subcommand inherits from `corekit.cli.common_options`;
#: listed once, under ``corekit`` itself.
COMMON_DESTS = {"help", "app", "broker", "result_backend", "config", "traceback"}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each reference marker of a page by the reference it names."""
    def render(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in RENDERERS:
            raise ValueError(f"{page.file.src_path}: unknown reference {name!r}; "
                             f"known: {', '.join(sorted(RENDERERS))}")
        return RENDERERS[name]()
    return MARKER.sub(render, markdown)


# -- hooks -------------------------------------------------------------------


def hooks_reference() -> str:
    """Every hookspec of `corekit.hookspecs`, under its phase banner, with its
    signature and docstring (first-result hooks are marked)."""
    import corekit.hookspecs as hookspecs

    source = inspect.getsource(hookspecs)
    lines: list[str] = []
    for banner, names in _hook_phases(source):
        lines.append(f"### {banner}\n")
        for name in names:
            lines.extend(_hook_entry(getattr(hookspecs, name)))
    return "\n".join(lines)


def _hook_phases(source: str) -> Iterator[tuple[str, list[str]]]:
    """Phase banners (``# -- title ----``) and the hooks under each, in
    source order, so the page groups hooks as the module does."""
    banner, names = "Hooks", []
    for line in source.splitlines():
        title = re.match(r"^# -- (.+?) -+$", line)
        hook = re.match(r"^def (corekit_\w+)\(", line)
        if title:
            if names:
                yield banner, names
            banner, names = title.group(1).capitalize(), []
        elif hook:
            names.append(hook.group(1))
    if names:
        yield banner, names


def _hook_entry(function: Callable[..., Any]) -> list[str]:
    spec = getattr(function, "corekit_spec", {}) or {}
    first = " *(first non-None result wins)*" if spec.get("firstresult") else ""
    signature = inspect.signature(function)
    doc = inspect.cleandoc(function.__doc__ or "(undocumented)")
    return [f"#### `{function.__name__}`{first}\n",
            f"```text\n{function.__name__}{signature}\n```\n",
            doc + "\n"]


# -- settings ----------------------------------------------------------------


def settings_reference() -> str:
    """Every declared setting (`corekit.settings.declared_settings`: the
    kernel's and the installed plugins'), grouped by who declares it."""
    from corekit.settings import declared_settings

    settings = declared_settings().values()
    out: list[str] = []
    owners = sorted({s.plugin for s in settings}, key=lambda o: (o != "corekit", o))
    for owner in owners:
        title = "the kernel (corekit)" if owner == "corekit" else f"plugin `{owner}`"
        out += [f"### Declared by {title}\n", "| setting | default | type | meaning |",
                "|---|---|---|---|"]
        for s in sorted(settings, key=lambda s: s.name):
            if s.plugin == owner:
                out.append(f"| `{s.name}` | {_cell(repr(s.default))} | {_type_name(s)} "
                           f"| {_escape(s.doc)} |")
        out.append("")
    return "\n".join(out)


def _type_name(setting: Any) -> str:
    types = setting.type if isinstance(setting.type, tuple) else (setting.type,)
    names = [t.__name__ for t in types if t is not object] or ["any"]
    if setting.nullable or setting.default is None:
        names.append("None")
    return " or ".join(dict.fromkeys(names))


def _cell(text: str) -> str:
    return "`" + text.replace("|", "\\|") + "`"


def _escape(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


# -- command line ------------------------------------------------------------


def cli_reference() -> str:
    """Every subcommand of `corekit.cli.build_parser()` (plugins' included):
    its usage and its options, walked recursively."""
    from corekit.cli import build_parser

    parser = build_parser()
    out = ["### `corekit`\n", _usage(parser), _options(parser, common=True)]
    for path, sub in _subcommands(parser, ["corekit"]):
        depth = "#" * min(3 + len(path) - 1, 6)
        out += [f"{depth} `{' '.join(path)}`\n", _describe(sub), _usage(sub), _options(sub)]
    return "\n".join(part for part in out if part)


def _subcommands(parser: argparse.ArgumentParser,
                 path: list[str]) -> Iterator[tuple[list[str], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                sub.corekit_help = helps.get(name)  # type: ignore[attr-defined]
                yield [*path, name], sub
                yield from _subcommands(sub, [*path, name])


def _describe(parser: argparse.ArgumentParser) -> str:
    text = parser.description or getattr(parser, "corekit_help", None) or ""
    return _escape(text) + "\n" if text else ""


def _usage(parser: argparse.ArgumentParser) -> str:
    usage = " ".join(parser.format_usage().split())
    return f"```text\n{usage}\n```\n"


def _options(parser: argparse.ArgumentParser, common: bool = False) -> str:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        if (action.dest in COMMON_DESTS) != common and action.dest != "help":
            continue
        if action.dest == "help":
            continue
        names = ", ".join(action.option_strings) or (action.metavar or action.dest)
        if action.option_strings and action.nargs != 0:
            names += f" {action.metavar or action.dest.upper()}"
        rows.append(f"| `{_escape(names)}` | {_escape(_help(action))} |")
    if not rows:
        return ""
    return "\n".join(["| option | meaning |", "|---|---|", *rows, ""])


def _help(action: argparse.Action) -> str:
    """The help text as ``--help`` prints it (argparse's %-formatting done)."""
    try:
        return (action.help or "") % {**vars(action), "default": action.default}
    except (KeyError, TypeError, ValueError):
        return action.help or ""


RENDERERS: dict[str, Callable[[], str]] = {
    "hooks": hooks_reference,
    "settings": settings_reference,
    "cli": cli_reference,
}
