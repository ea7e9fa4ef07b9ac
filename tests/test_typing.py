"""Type checkers see a task's own signature (mypy on a user's module)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

USER_CODE = '''
from corekit import Corekit, AsyncResult

app = Corekit("proj", broker="memory://t")

@app.task
def add(x: int, y: int) -> int:
    return x + y

@app.task(bind=True, max_retries=2)
def greet(self, name: str) -> str:
    return "hi " + name

ok: int = add(1, 2)
res: AsyncResult[int] = add.delay(1, 2)
value: int = res.get(timeout=1)
hello: str = greet("bob")
greet.delay("bob")
add.delay("one", 2)          # expect-error
add(1)                       # expect-error
greet.delay(3)               # expect-error
'''


def test_mypy_checks_task_calls_against_the_function(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    module = tmp_path / "user_tasks.py"
    module.write_text(USER_CODE)
    # an editable install hides the package from mypy's search: point it at the source
    env = {**os.environ, "MYPYPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental",
                          "--cache-dir", str(tmp_path / ".mypy"), "--follow-imports=silent",
                          str(module)], capture_output=True, text=True, cwd=tmp_path, env=env)
    errors = sorted({int(line.split(":")[1]) for line in out.stdout.splitlines()
                     if ": error:" in line})
    expected = [n for n, line in enumerate(USER_CODE.splitlines(), 1) if "expect-error" in line]
    assert errors == expected, out.stdout
