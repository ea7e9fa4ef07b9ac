"""Reading the documentation's Markdown for the docs tests: its pages, their
Python blocks and the markers that tell a test how to run them.

A page's Python blocks run in order as one script in a fresh directory
(``tests/plugin_pkg`` on the path, for the pages about that plugin).  A
block with ``title="name.py"`` is written to that file instead (a module the
script or a worker imports).  HTML comments steer the run:

- ``<!-- docs-test: worker ARGS -->`` (anywhere in the page): the test starts
  ``corekit ARGS`` in that directory before the script and stops it after;
- ``<!-- docs-test: redis -->`` / ``amqp`` just before a block: the block runs
  as a script of its own against the test's Redis (broker and results) or
  RabbitMQ (broker), through ``COREKIT_BROKER_URL``/``COREKIT_RESULT_BACKEND``;
- a block titled ``path (excerpt)`` quotes a repository file: it is not run,
  and a test checks its lines against that file;
- ``<!-- docs-test: skip REASON -->`` just before a block: not run; the
  reason is required and the docs tests list and count the skips.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)(?P<attrs>[^\n]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"<!-- docs-test: (?P<what>[\w-]+) ?(?P<arg>.*?) ?-->")
TITLE = re.compile(r'title="(?P<title>[^"]+)"')


@dataclass
class Block:
    """One fenced code block of a page."""
    lang: str
    body: str
    title: str | None
    marker: str | None        # the docs-test marker on the line before it
    marker_arg: str
    line: int


@dataclass
class Page:
    path: Path
    text: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.path.relative_to(ROOT))

    def markers(self, what: str) -> list[str]:
        return [m.group("arg") for m in MARKER.finditer(self.text) if m.group("what") == what]

    def python(self) -> list[Block]:
        return [b for b in self.blocks if b.lang in ("python", "py")]


def markdown_files() -> list[Path]:
    """Every Markdown file of the docs, and the README."""
    return sorted(DOCS.rglob("*.md")) + [ROOT / "README.md"]


def read_page(path: Path) -> Page:
    text = path.read_text(encoding="utf-8")
    page = Page(path, text)
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip().rsplit("\n", 1)[-1]
        marker = MARKER.fullmatch(before.strip())
        title = TITLE.search(match.group("attrs"))
        body = _dedent(match.group("body"), match.group("indent"))
        page.blocks.append(Block(
            lang=match.group("lang"), body=body, title=title.group("title") if title else None,
            marker=marker.group("what") if marker else None,
            marker_arg=marker.group("arg") if marker else "",
            line=text.count("\n", 0, match.start()) + 1))
    return page


def _dedent(body: str, indent: str) -> str:
    return "".join(line[len(indent):] if line.startswith(indent) else line
                   for line in body.splitlines(keepends=True))


def prose(text: str) -> str:
    """The page without its fenced blocks and inline code: what renders as
    text and links."""
    text = FENCE.sub("", text)
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", text, flags=re.DOTALL)
