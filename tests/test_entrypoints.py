"""corekit.entrypoints gives importlib.metadata's answer without importing
it: same entry points, same order, same shadowing, in real layouts (this
checkout's egg-info, the installed editable package, a plugin installed with
``pip install --target`` on PYTHONPATH) and in made-up ones that test the
rules (normalized names, comments, a zip on the path)."""
from __future__ import annotations

import importlib.metadata as md
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from corekit import entrypoints
from corekit.entrypoints import entry_points
from helpers import ROOT

GROUPS = ("corekit.plugins", "console_scripts", "pytest11")

COMPARE = '''
import importlib.metadata as md, json, sys
from corekit.entrypoints import entry_points
out = {}
for group in %r:
    ours = [(ep.name, ep.value, ep.group) for ep in entry_points(group)]
    theirs = [(ep.name, ep.value, ep.group) for ep in md.entry_points(group=group)]
    out[group] = [ours, theirs]
print(json.dumps(out))
''' % (GROUPS,)


def triples(eps: list[Any]) -> list[tuple[str, str, str]]:
    return [(ep.name, ep.value, ep.group) for ep in eps]


def compare_in_subprocess(cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", COMPARE], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("where", ["checkout", "elsewhere"])
def test_same_answer_as_importlib_metadata_for_the_installed_packages(
        where: str, tmp_path: Path) -> None:
    # In the checkout, '' on sys.path finds corekit.egg-info before the installed
    # metadata: the first distribution of a name wins, in both.
    answers = compare_in_subprocess(ROOT if where == "checkout" else tmp_path)
    for group, (ours, theirs) in answers.items():
        assert ours == theirs, group
    assert any(name == "sqlite" for name, _, _ in answers["corekit.plugins"][0])


def test_same_answer_with_a_plugin_installed_by_pip_target(tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(site),
                    str(ROOT / "tests" / "plugin_pkg")], check=True, capture_output=True)
    answers = compare_in_subprocess(tmp_path, {"PYTHONPATH": str(site)})
    ours, theirs = answers["corekit.plugins"]
    assert ours == theirs
    assert "spool" in [name for name, _, _ in ours]


def dist(root: Path, dirname: str, entry_points_txt: str | None, name: str | None = None) -> None:
    meta = root / dirname
    meta.mkdir(parents=True)
    distname = name or dirname.rpartition(".")[0].partition("-")[0]
    filename = "PKG-INFO" if dirname.endswith(".egg-info") else "METADATA"
    (meta / filename).write_text(f"Metadata-Version: 2.1\nName: {distname}\nVersion: 1.0\n")
    if entry_points_txt is not None:
        (meta / "entry_points.txt").write_text(entry_points_txt)


def same_in_process(monkeypatch: pytest.MonkeyPatch, path: list[Path],
                    group: str = "corekit.plugins") -> list[tuple[str, str, str]]:
    monkeypatch.setattr(sys, "path", [str(p) for p in path])
    ours, theirs = triples(entry_points(group)), triples(list(md.entry_points(group=group)))
    assert ours == theirs
    return ours


def test_first_distribution_of_a_normalized_name_wins(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    dist(first, "Spool_Kit-2.0.dist-info", "[corekit.plugins]\nspool = spool_kit.new\n")
    dist(second, "spool.kit-1.0.dist-info", "[corekit.plugins]\nspool = spool_kit.old\n")
    dist(second, "other-1.0.egg-info", "[corekit.plugins]\nother = other_plugin\n")
    found = same_in_process(monkeypatch, [first, second])
    assert found == [("spool", "spool_kit.new", "corekit.plugins"),
                     ("other", "other_plugin", "corekit.plugins")]


def test_entry_points_txt_is_read_as_importlib_metadata_reads_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist(tmp_path, "fancy-1.0.dist-info", """
# a comment
[console_scripts]
fancy = fancy.cli:main

  [corekit.plugins]
  # the plugin
   spool =  fancy.plugin:Plugin.inner [extra1, extra2]
bare=fancy.bare
[other]
spool = not.this
""")
    dist(tmp_path, "no_entry_points-1.0.dist-info", None)
    found = same_in_process(monkeypatch, [tmp_path])
    assert found == [("spool", "fancy.plugin:Plugin.inner [extra1, extra2]", "corekit.plugins"),
                     ("bare", "fancy.bare", "corekit.plugins")]


def test_a_path_entry_that_is_missing_or_not_metadata_is_skipped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist(tmp_path / "real", "a-1.0.dist-info", "[corekit.plugins]\na = a_plugin\n")
    (tmp_path / "real" / "notes.dist-info.txt").write_text("not a distribution")
    found = same_in_process(monkeypatch, [tmp_path / "missing", tmp_path / "real"])
    assert found == [("a", "a_plugin", "corekit.plugins")]


def test_a_zip_on_the_path_is_left_to_importlib_metadata(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zipped-1.0.dist-info/METADATA", "Name: zipped\nVersion: 1.0\n")
        zf.writestr("zipped-1.0.dist-info/entry_points.txt",
                    "[corekit.plugins]\nzipped = zipped_plugin\n")
    found = same_in_process(monkeypatch, [archive])
    assert found == [("zipped", "zipped_plugin", "corekit.plugins")]


def test_load_imports_the_module_or_the_attribute_it_names(tmp_path: Path) -> None:
    ep = entrypoints.EntryPoint("x", "json.decoder:JSONDecoder.decode", "g", str(tmp_path))
    import json.decoder

    assert ep.load() is json.decoder.JSONDecoder.decode
    assert entrypoints.EntryPoint("x", "json", "g", str(tmp_path)).load() is json
    with pytest.raises(ValueError, match="entry point 'bad' has a malformed value"):
        entrypoints.EntryPoint("bad", "no good:", "g", str(tmp_path)).load()


def test_dist_gives_the_distribution_name_and_version(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    dist(tmp_path, "Spool_Kit-2.0.dist-info", "[corekit.plugins]\nspool = spool_kit\n",
         name="Spool-Kit")
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    [ep] = entry_points("corekit.plugins")
    assert (ep.dist.metadata["Name"], ep.dist.version) == ("Spool-Kit", "1.0")


def test_reading_entry_points_does_not_import_importlib_metadata() -> None:
    code = ("import sys\nfrom corekit.entrypoints import entry_points\n"
            "assert entry_points('corekit.plugins')\n"
            "print('importlib.metadata' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_an_unreadable_entry_points_txt_of_another_package_is_skipped_with_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken install of some other package (not UTF-8: importlib.metadata
    itself raises on it) must not stop every corekit command."""
    dist(tmp_path, "broken-1.0.dist-info", None)
    (tmp_path / "broken-1.0.dist-info" / "entry_points.txt").write_bytes(b"\xfc\x00[corekit")
    dist(tmp_path, "good-1.0.dist-info", "[corekit.plugins]\ngood = good_plugin\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    with pytest.warns(RuntimeWarning, match="broken-1.0.dist-info: its entry_points.txt cannot "
                                            "be read"):
        found = triples(entry_points("corekit.plugins"))
    assert found == [("good", "good_plugin", "corekit.plugins")]
