"""The entry points of one group, found the way ``importlib.metadata`` finds
them, without importing it.

Every ``corekit`` command and every app's finalize needs the
``corekit.plugins`` entry points, and ``importlib.metadata`` costs about as
much as the rest of start-up together (it imports ``email``, ``csv``,
``zipfile``...).  This scanner gives the same answer for the usual layouts:

* every ``sys.path`` entry in order (``''`` is the current directory), each a
  directory listed once; ``*.dist-info`` and ``*.egg-info`` children are the
  distributions, grouped by normalized name in listing order, as
  ``importlib.metadata``'s ``Lookup`` groups them;
* the first distribution of a normalized name wins (a source checkout's
  ``corekit.egg-info`` on the path shadows the installed metadata, as it does
  for ``importlib.metadata``);
* ``entry_points.txt`` is read as ``importlib.metadata`` reads it (stripped
  lines, ``#`` comments, ``[group]`` headers, ``name = value``).

Where the layout is unusual (a zip file or a ``.egg`` on the path, a
metadata directory whose suffix is not lower case, another finder on
``sys.meta_path`` that finds distributions) it hands over to
``importlib.metadata`` itself, so the answer stays right.  Package metadata
(names, versions) is not read here: `EntryPoint.dist` gives
``importlib.metadata``'s distribution for that, on demand.
"""
from __future__ import annotations

import functools
import importlib
import os
import sys
from typing import Any, Iterable, Iterator

_SUFFIXES = (".dist-info", ".egg-info")


class UnusualLayout(Exception):
    """A ``sys.path`` layout this scanner leaves to ``importlib.metadata``."""


class EntryPoint:
    """One entry point: ``name = value`` in ``group`` of the distribution
    whose metadata directory is *dist_path*.  Answers what the plugin manager
    asks of ``importlib.metadata.EntryPoint`` (``name``, ``value``, ``group``,
    ``load()``, ``dist``)."""

    __slots__ = ("name", "value", "group", "dist_path")

    def __init__(self, name: str, value: str, group: str, dist_path: str) -> None:
        self.name, self.value, self.group, self.dist_path = name, value, group, dist_path

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, EntryPoint) and (self.name, self.value, self.group)
                == (other.name, other.value, other.group))

    def __hash__(self) -> int:
        return hash((self.name, self.value, self.group))

    def load(self) -> Any:
        """Import the module and return it, or the attribute the value names."""
        module_name, attrs = _parse_value(self.value)
        if module_name is None:
            raise ValueError(f"entry point {self.name!r} has a malformed value {self.value!r}; "
                             f"expected 'module' or 'module:attribute'")
        return functools.reduce(getattr, attrs, importlib.import_module(module_name))

    @property
    def dist(self) -> Any:
        """``importlib.metadata``'s distribution (imports it: for names and versions)."""
        import importlib.metadata as md
        import pathlib

        return md.PathDistribution(pathlib.Path(self.dist_path))


def entry_points(group: str) -> list[Any]:
    """The entry points of *group* in distribution order, as
    ``importlib.metadata.entry_points(group=group)`` lists them."""
    try:
        _check_finders()
        return list(_scan(group, sys.path))
    except UnusualLayout:
        import importlib.metadata as md

        return list(md.entry_points(group=group))


def _check_finders() -> None:
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if finder is not PathFinder and getattr(finder, "find_distributions", None):
            raise UnusualLayout(f"{finder!r} finds distributions")


def _scan(group: str, path: Iterable[str]) -> Iterator[EntryPoint]:
    seen: set[str] = set()
    for entry in path:
        for name, dist_dir in _distributions_in(entry):
            if name in seen:
                continue
            seen.add(name)
            yield from _read_entry_points(dist_dir, group)


def _distributions_in(entry: str) -> list[tuple[str, str]]:
    """``[(normalized name, metadata dir)]`` of one ``sys.path`` entry, in
    importlib.metadata's order."""
    root = entry or "."
    try:
        children = os.listdir(root)
    except NotADirectoryError:
        raise UnusualLayout(f"{entry!r} is a file (a zip?)") from None
    except OSError:
        return []
    if os.path.basename(entry).lower().endswith(".egg"):
        raise UnusualLayout(f"{entry!r} is an egg")
    by_name: dict[str, list[str]] = {}
    for child in children:
        low = child.lower()
        if low.endswith(_SUFFIXES):
            if not child.endswith(_SUFFIXES):
                raise UnusualLayout(f"{child!r}: suffix not lower case")
            name = _normalize(low.rpartition(".")[0].partition("-")[0])
            by_name.setdefault(name, []).append(os.path.join(entry, child))
    return [(name, dist) for name, dists in by_name.items() for dist in dists]


def _parse_value(value: str) -> tuple[str | None, list[str]]:
    """``(module, [attribute, ...])`` of ``module[:attr.sub] [extras]``, as
    importlib.metadata's pattern reads it (no regular expression: compiling
    one costs more than the rest of the scan); ``(None, [])`` if malformed."""
    text = value.rstrip()
    if text.endswith("]") and "[" in text:
        text = text[:text.index("[")].rstrip()
    module, colon, attr = (part.strip() for part in text.partition(":"))
    parts = [module, *([attr] if colon else [])]
    if not all(part and all(word.isidentifier() or word.isdigit() or not word
                            for word in part.split(".")) for part in parts):
        return None, []
    return module, [word for word in attr.split(".") if word]


def _normalize(name: str) -> str:
    """PEP 503 normalization with underscores, as importlib.metadata's
    (``[-_.]+`` -> ``_``, lower case)."""
    name = name.lower().replace("-", "_").replace(".", "_")
    while "__" in name:
        name = name.replace("__", "_")
    return name


def _read_entry_points(dist_dir: str, group: str) -> Iterator[EntryPoint]:
    try:
        with open(os.path.join(dist_dir, "entry_points.txt"), encoding="utf-8") as file:
            text = file.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return
    except (OSError, UnicodeDecodeError) as exc:  # another package's broken install
        import warnings

        warnings.warn(f"skipping the entry points of {dist_dir}: its entry_points.txt cannot "
                      f"be read ({exc}); reinstall that package", RuntimeWarning, stacklevel=2)
        return
    section = None
    for line in map(str.strip, text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
        elif section == group and "=" in line:
            name, value = map(str.strip, line.split("=", 1))
            yield EntryPoint(name, value, group, dist_dir)
