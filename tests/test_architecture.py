"""DESIGN.md §1: the kernel reaches plugins only through the plugin manager."""
from __future__ import annotations

import ast
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
                 for name in imports(p) if name.startswith("corekit.plugins")]
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
KERNEL_SIDE_ENTRY_POINTS = {"optional-steps": "corekit.worker.optional_steps"}


def test_kernel_side_entry_points_are_the_known_ones_and_exist() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    entries = project["project"]["entry-points"]["corekit.plugins"]
    kernel_side = {name: module for name, module in entries.items()
                   if not module.startswith("corekit.plugins.")}
    assert kernel_side == KERNEL_SIDE_ENTRY_POINTS
    for module in kernel_side.values():
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module
