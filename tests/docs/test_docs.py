"""The documentation site builds, every Python example in it runs, and it
names nothing that is not there: no link out of the repository, no path that
does not exist."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from docpages import DOCS, ROOT, Page, markdown_files, prose, read_page

PAGES = [read_page(path) for path in markdown_files()]
RUNNABLE = [page for page in PAGES if page.python()]
EXCERPT = " (excerpt)"
#: Skipped blocks are an exception; more than this asks for examples that run.
MAX_SKIPPED = 6


def test_site_builds_strict(tmp_path: Path) -> None:
    """``mkdocs build --strict``: a broken link, an unknown anchor, a page left
    out of the nav or a failing reference generator fails the build."""
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",  # no -q: it hides the warnings strict counts
                           "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr + done.stdout
    html = "\n".join(p.read_text(encoding="utf-8") for p in site.rglob("*.html"))
    import corekit.hookspecs as hookspecs
    for hook in (name for name in dir(hookspecs) if name.startswith("corekit_")):
        assert hook in (site / "plugins" / "index.html").read_text(), f"hook {hook} not listed"
    cli = (site / "reference" / "cli" / "index.html").read_text()
    for command in ("corekit worker", "corekit dlq replay", "corekit inspect registered",
                    "--max-tasks-per-child"):
        assert command in cli, f"{command} missing from the CLI reference"
    settings = (site / "reference" / "configuration" / "index.html").read_text()
    for setting in ("broker_url", "worker_max_message_size", "task_acks_late"):
        assert setting in settings
    external = sorted(set(re.findall(r'(?:href|src)="((?:https?:)?//[^"]+)"', html)))
    assert not external, f"the built site links outside the repository: {external}"


@pytest.mark.parametrize("page", RUNNABLE, ids=[p.name for p in RUNNABLE])
def test_python_examples_run(page: Page, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Every Python block of the page runs, in order, as one script (blocks
    marked redis/amqp: each as a script of its own against that server)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COREKIT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [  # the spool plugin page imports it
        str(tmp_path), str(ROOT / "tests" / "plugin_pkg"), os.environ.get("PYTHONPATH")]))
    main, own = [], []
    for block in page.python():
        if block.marker == "skip":
            continue
        if block.title and block.title.endswith(EXCERPT):
            continue
        if block.title:
            (tmp_path / block.title).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / block.title).write_text(block.body)
        elif block.marker in ("redis", "amqp"):
            own.append(block)
        else:
            main.append(f"# {page.name}:{block.line}\n{block.body}")
    with _workers(page, tmp_path, env):
        if main:
            _run(tmp_path, "\n".join(main), env, page.name)
    for block in own:
        server_env = dict(env)
        if block.marker == "redis":
            url = request.getfixturevalue("redis_url")
            server_env.update(COREKIT_BROKER_URL=url, COREKIT_RESULT_BACKEND=url)
        else:
            server_env["COREKIT_BROKER_URL"] = request.getfixturevalue("amqp_url")
        _run(tmp_path, block.body, server_env, f"{page.name}:{block.line}")


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_excerpts_match_their_file(page: Page) -> None:
    """A block titled ``path (excerpt)`` quotes that file: each of its lines
    is in the file, in order, so a walk-through cannot drift from its code."""
    for block in page.blocks:
        if not (block.title or "").endswith(EXCERPT):
            continue
        source = (ROOT / block.title[:-len(EXCERPT)]).read_text().splitlines()
        position = 0
        for line in filter(str.strip, block.body.splitlines()):
            try:
                position = source.index(line, position) + 1
            except ValueError:
                raise AssertionError(f"{page.name}:{block.line}: not in {block.title}, "
                                     f"in this order: {line!r}") from None


def test_skipped_examples_are_few_and_give_a_reason() -> None:
    skipped = [(page.name, block.line, block.marker_arg)
               for page in PAGES for block in page.python() if block.marker == "skip"]
    assert all(reason.strip() for _, _, reason in skipped), f"a skip without a reason: {skipped}"
    assert len(skipped) <= MAX_SKIPPED, f"too many skipped examples: {skipped}"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_no_link_leaves_the_repository(page: Page) -> None:
    text = prose(page.text)
    links = re.findall(r"\]\(([^)\s]+)", text) + re.findall(r"<((?:https?:)?//[^>]+)>", text)
    links += re.findall(r"(?:href|src)=\"([^\"]+)", text)
    outside = [link for link in links if re.match(r"^([a-z][\w+.-]*:|//)", link)]
    outside += re.findall(r"\bhttps?://\S+", text)
    assert not outside, f"{page.name} links outside the repository: {outside}"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_relative_links_exist(page: Page) -> None:
    """What mkdocs checks for the docs, for the README too (and for links from
    the docs to files outside docs/, which mkdocs cannot see)."""
    missing = []
    for link in re.findall(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)", prose(page.text)):
        if not re.match(r"^[a-z][\w+.-]*:", link) and not (page.path.parent / link).exists():
            missing.append(link)
    assert not missing, f"{page.name} links to files that do not exist: {missing}"


REPO_PATH = re.compile(
    r"(?<![\w./-])((?:corekit|plugins|tests|examples|benchmarks|scripts|docs|extra)"
    r"/[\w./-]*[\w/])")


#: Paths that a run creates (screenshots), named by the docs but not committed.
MADE_BY_RUNS = {"tests/artifacts/"}


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_repository_paths_exist(page: Page) -> None:
    """Every ``corekit/...``, ``plugins/...``, ``tests/...`` path the page
    names exists, so a moved module cannot leave the docs behind."""
    text = re.sub(r"\]\([^)]*\)", "]", page.text)          # links are checked above
    missing = sorted({path for path in REPO_PATH.findall(text)
                      if path not in MADE_BY_RUNS and not (ROOT / path).exists()})
    assert not missing, f"{page.name} names paths that do not exist: {missing}"


def test_the_docs_pages_are_found() -> None:
    assert (DOCS / "index.md").exists() and len(PAGES) > 10


def _run(cwd: Path, source: str, env: dict[str, str], label: str) -> None:
    script = cwd / "docs_example.py"
    script.write_text(source)
    done = subprocess.run([sys.executable, str(script)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{label}: example failed\n{done.stdout}\n{done.stderr}"


@contextmanager
def _workers(page: Page, cwd: Path, env: dict[str, str]) -> Iterator[None]:
    procs = []
    try:
        for args in page.markers("worker"):
            procs.append(_start_worker(args.split(), cwd, env))
        yield
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _start_worker(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "corekit", *args, "-l", "info"], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "ready." in line:
            break
    else:
        raise AssertionError("the page's worker never became ready:\n" + "".join(lines))
    _drain(proc)
    return proc


def _drain(proc: subprocess.Popen[str]) -> None:
    """Keep reading the worker's output so a full pipe never blocks it."""
    import threading

    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
