"""DESIGN.md §1-2: the kernel reaches plugins only through the plugin manager and
names no built-in plugin (issue 13)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


def python_files(*dirs: str) -> list[Path]:
    return [p for d in dirs for p in (ROOT / d).rglob("*.py")]


def test_nothing_imports_the_plugins_directory_as_a_package() -> None:
    offenders = [f"{p}: {name}" for p in python_files("corekit", "plugins", "tests", "benchmarks",
                                                      "examples")
                 for name in imports(p) if name == "plugins" or name.startswith("plugins.")]
    assert offenders == []


def test_kernel_never_imports_builtin_plugins() -> None:
    offenders = [f"{p}: {name}" for p in python_files("corekit")
                 if "contrib" not in p.relative_to(ROOT).parts
                 for name in imports(p) if name.startswith(("corekit.plugins", "corekit.contrib"))]
    assert offenders == []


def test_every_builtin_plugin_module_is_an_entry_point() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    registered = set(project["project"]["entry-points"]["corekit.plugins"].values())
    modules = {f"corekit.plugins.{p.stem}" for p in (ROOT / "plugins").glob("*.py")
               if p.stem != "__init__"}
    modules |= {f"corekit.plugins.{p.parent.name}" for p in (ROOT / "plugins").glob("*/__init__.py")}
    assert modules == {name for name in registered if name.startswith("corekit.plugins.")}


#: Kernel modules registered as plugins: the kernel's optional parts take the
#: route any plugin takes (DESIGN §2), so the kernel's step list names none of them.
KERNEL_SIDE_ENTRY_POINTS = {"optional-steps": "corekit.optional_steps"}


def test_kernel_side_entry_points_are_the_known_ones_and_exist() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    entries = project["project"]["entry-points"]["corekit.plugins"]
    kernel_side = {name: module for name, module in entries.items()
                   if not module.startswith(("corekit.plugins.", "corekit.contrib."))}
    assert kernel_side == KERNEL_SIDE_ENTRY_POINTS
    for module in kernel_side.values():
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module


def test_contrib_entry_points_exist_and_import_no_framework() -> None:
    """A contrib plugin (corekit.contrib.django) is an entry point like any
    other, and loading it imports nothing of its framework (DESIGN §2)."""
    import subprocess
    import sys
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    entries = project["project"]["entry-points"]["corekit.plugins"]
    contrib = {name: m for name, m in entries.items() if m.startswith("corekit.contrib.")}
    assert contrib == {"django": "corekit.contrib.django.plugin"}
    for module in contrib.values():
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module
        code = f"import sys, {module}; print(sorted(m for m in sys.modules if m == 'django' " \
               f"or m.startswith('django.')))"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.stdout.strip() == "[]", done.stderr


# -- the kernel names no built-in plugin (issue 13) -------------------------------

#: Built-in plugin names and the pool, transport, serializer and compressor
#: names users pick them by.
PLUGIN_NAMES = frozenset({
    "eventlet", "gevent", "prefork", "solo", "threads", "asyncio",
    "memory", "sqlite", "redis", "rediss", "redis+socket", "amqp", "amqps", "pyamqp", "rpc",
    "json", "msgpack", "pickle", "yaml", "zlib", "bzip2", "zstd",
})
#: In identifiers, only the names that are no stdlib module nor common word
#: (``json``, ``asyncio``, ``threads``, ``memory``... name Python's own things).
IDENTIFIER_NAMES = frozenset({"eventlet", "gevent", "prefork", "redis", "rediss", "amqp",
                              "amqps", "pyamqp", "sqlite", "msgpack", "zstd", "bzip2"})

#: (file, literal) pairs that are not a plugin named by the kernel, and why.
ALLOWED = {
    # default setting values: what an app gets when it sets nothing; the
    # plugins providing them are installed with corekit
    ("corekit/config.py", "sqlite://"),            # broker_url / result_backend default
    ("corekit/defaults.py", "json"),               # task/result serializer, accept_content
    ("corekit/defaults.py", "threads"),            # worker_pool default
    ("corekit/result_backend.py", "json"),         # result_serializer default, when a
                                                   # backend is built without options
    ("corekit/schedules/entry.py", "json"),        # periodic-task definitions are stored as
                                                   # kombu's JSON, the default serializer
    ("corekit/contrib/django/schedule_store.py", "sqlite"),  # Django's database vendor name
    # the pytest plugin's fixtures: an in-memory app and a threads worker,
    # as Celery's contrib.testing does
    ("corekit/testing.py", "memory://"),
    ("corekit/testing.py", "threads"),
    # the JSON log format's name (--log-format json: the stdlib json module,
    # not the serializer plugin)
    ("corekit/cli/daemon_options.py", "json"),
}

#: A plugin name as a word of a literal: not part of a flag (``--json``), a
#: MIME type (``application/json``), a path or a dotted name.
WORD = re.compile(r"(?<![\w/.+-])([a-z][a-z0-9]*(?:\+socket)?)(?:://)?(?![\w/+-])")


def docstrings(tree: ast.AST) -> set[int]:
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                 ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)}


def named_plugins(text: str) -> set[str]:
    """The plugin names *text* mentions as words or URL schemes."""
    return {m.group(1) for m in WORD.finditer(text) if m.group(1) in PLUGIN_NAMES}


def literal_offenders(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    skip = docstrings(tree)
    rel = path.relative_to(ROOT).as_posix()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            if (rel, node.value) in ALLOWED:
                continue
            names = named_plugins(node.value)
            if names:
                found.append(f"{rel}:{node.lineno}: {sorted(names)} in {node.value[:60]!r}")
    return found


def identifier_offenders(path: Path) -> list[str]:
    rel = path.relative_to(ROOT).as_posix()
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = ([node.id] if isinstance(node, ast.Name) else
                 [node.attr] if isinstance(node, ast.Attribute) else
                 [node.name] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                  ast.ClassDef)) else
                 [node.arg] if isinstance(node, ast.arg) else
                 [node.name, node.asname or ""] if isinstance(node, ast.alias) else [])
        for name in names:
            if set(re.split(r"[_.]", name.lower())) & IDENTIFIER_NAMES:
                found.append(f"{rel}:{node.lineno}: identifier {name!r}")
    return found


def test_the_scan_finds_what_it_looks_for() -> None:
    assert named_plugins("use the prefork pool") == {"prefork"}
    assert named_plugins("(redis://, sqlite://), not x") == {"redis", "sqlite"}
    assert named_plugins("solo") == {"solo"}
    assert named_plugins("redis+socket://x") == {"redis+socket"}
    assert named_plugins("--json application/json corekit.plugins.sqlite a/eventlet") == set()


def test_kernel_strings_name_no_builtin_plugin() -> None:
    offenders = [o for p in python_files("corekit") for o in literal_offenders(p)]
    assert offenders == []


def test_kernel_identifiers_name_no_builtin_plugin() -> None:
    offenders = [o for p in python_files("corekit") for o in identifier_offenders(p)]
    assert offenders == []


def test_every_allowance_is_still_needed() -> None:
    """An allowance whose literal left its file must leave the list too."""
    stale = [(f, lit) for f, lit in ALLOWED
             if not any(isinstance(n, ast.Constant) and n.value == lit
                        for n in ast.walk(ast.parse((ROOT / f).read_text())))]
    assert stale == []


def test_every_package_is_in_the_wheel() -> None:
    """pyproject lists packages by hand: one left out imports fine from the
    source tree and is missing from every installed wheel."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "corekit").rglob(
        "__init__.py")}
    found |= {"corekit.plugins" + "".join("." + part for part in p.parent.relative_to(
        ROOT / "plugins").parts) for p in (ROOT / "plugins").rglob("__init__.py")}
    assert found - listed == set()
    assert listed - found == set()
