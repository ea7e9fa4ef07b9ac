"""Decompression bombs and huge bodies: one limit, ``worker_max_message_size``,
on a task body as it comes and as it decompresses, enforced while
streaming; past it the message is dead-lettered naming the limit, and the
worker's memory stays near the limit, not near the bomb."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest

from corekit import Corekit
from corekit.config import DEFAULTS
from corekit.exceptions import DecodeError
from corekit.messages import build_message, task_body, task_headers
from corekit.serialization import DEFAULT_MAX_SIZE, BodyTooLarge
from corekit.testing import start_worker

MiB = 1024 * 1024


def zlib_bomb(size: int) -> bytes:
    """A zlib stream of *size* zero bytes (a multiple of 16 MiB), built
    without compressing them all: after a full flush deflate starts afresh,
    so every 16 MiB block compresses to the same bytes; the Adler-32 of n
    zeros is ``(n % 65521) << 16 | 1``."""
    block = bytes(16 * MiB)
    assert size % len(block) == 0
    deflate = zlib.compressobj(9)
    first = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    again = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    assert again == first[2:]
    final_empty_block = b"\x03\x00"
    adler = (size % 65521) << 16 | 1
    return first + again * (size // len(block) - 1) + final_empty_block + adler.to_bytes(4, "big")


def test_the_bomb_is_what_it_claims() -> None:
    assert zlib.decompress(zlib_bomb(48 * MiB)) == bytes(48 * MiB)


def test_the_default_limit() -> None:
    assert DEFAULTS["worker_max_message_size"] == DEFAULT_MAX_SIZE == 16 * MiB


# -- Codecs.decode ----------------------------------------------------------------------------
@pytest.fixture
def app() -> Any:
    app = Corekit("cap", broker="memory://cap", backend="memory://cap")
    yield app
    app.close()


JSON = "application/json"


@pytest.mark.parametrize("compression", ["zlib", "bzip2", "zstd"])
def test_decode_refuses_what_inflates_past_max_size(app: Corekit, compression: str) -> None:
    codecs = app.codecs
    body, ctype, _, ctype_z = codecs.encode(["x" * 2000], "json", compression)
    assert codecs.decode(body, ctype, ctype_z, max_size=2004) == ["x" * 2000]
    with pytest.raises(BodyTooLarge, match=r"decompressed body is over the limit of 2,003 "
                                           r"bytes \(worker_max_message_size\)"):
        codecs.decode(body, ctype, ctype_z, max_size=2003)


def test_decode_refuses_a_body_over_max_size(app: Corekit) -> None:
    body = json.dumps(["y" * 5000]).encode()
    assert app.codecs.decode(body, JSON, max_size=len(body)) == ["y" * 5000]
    with pytest.raises(BodyTooLarge, match=f"the body \\(5,004 bytes\\) is over the limit of "
                                           f"5,003 bytes"):
        app.codecs.decode(body, JSON, max_size=5003)


def test_decode_caps_decompression_even_unasked(app: Corekit) -> None:
    with pytest.raises(BodyTooLarge, match=f"{DEFAULT_MAX_SIZE:,} bytes"):
        app.codecs.decode(zlib_bomb(80 * MiB), JSON, "application/x-gzip")


@pytest.mark.parametrize("body", [None, 5, ["a"], {"b": 1}])
def test_decode_refuses_a_body_that_is_not_bytes(app: Corekit, body: Any) -> None:
    with pytest.raises(DecodeError, match="the body is not bytes"):
        app.codecs.decode(body, JSON, max_size=100)


# -- in a worker, on real brokers ------------------------------------------------------------
def publish(app: Corekit, body: bytes, compression: str | None, tag: str) -> str:
    task_id = f"{tag}-{uuid.uuid4().hex[:8]}"
    app.producer.publish([build_message(task_headers("echo", task_id, [], {}), body,
                                        JSON, "utf-8", compression, queue="celery")])
    return task_id


@pytest.fixture(params=["sqlite", "redis"])
def capped_app(request: pytest.FixtureRequest) -> Corekit:
    app: Corekit = request.getfixturevalue(f"{request.param}_app")
    app.conf.worker_max_message_size = 1 * MiB

    @app.task(name="echo")
    def echo(x: Any = None) -> Any:
        return x if x is None else len(x)

    return app


def test_bombs_and_huge_bodies_are_dead_lettered(capped_app: Corekit) -> None:
    app = capped_app
    codecs = app.codecs
    bombs = {}
    for name in ("zlib", "bzip2", "zstd"):
        c = codecs.compressor(name)
        body = c.compress(json.dumps(task_body(["z" * (4 * MiB)], {})).encode())
        bombs[publish(app, body, c.content_type, name)] = "decompressed body is over"
    huge = json.dumps(task_body(["h" * (2 * MiB)], {})).encode()
    bombs[publish(app, huge, None, "raw")] = f"the body ({len(huge):,} bytes) is over"
    fits = codecs.compressor("zlib").compress(json.dumps(task_body(["f" * 1000_000], {})).encode())
    fine = publish(app, fits, "application/x-gzip", "fits")
    with start_worker(app):
        assert app.AsyncResult(fine).get(timeout=15) == 1000_000
    letters = {d.message.headers["id"]: d.reason for d in app.producer.dead_letters()}
    assert set(letters) == set(bombs)
    for task_id, reason in bombs.items():
        assert reason in letters[task_id]
        assert "over the limit of 1,048,576 bytes (worker_max_message_size)" in letters[task_id]


WORKER_PROJ = '''
import os
from corekit import Corekit
app = Corekit("proj", broker=os.environ["TEST_BROKER"], backend=os.environ["TEST_BROKER"])

@app.task(name="echo")
def echo(x=None):
    return x
'''


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def test_a_worker_fed_a_1_gib_bomb_stays_small(tmp_path: Path) -> None:
    """A real worker process on SQLite, default limit (16 MiB), fed a 1 MiB
    zlib message that inflates to 1 GiB: it dead-letters it, runs the next
    task, and its peak RSS stays far below the bomb."""
    (tmp_path / "proj.py").write_text(WORKER_PROJ)
    url = f"sqlite://{tmp_path / 'broker.sqlite3'}"
    app = Corekit("client", broker=url, backend=url)
    bomb = zlib_bomb(1024 * MiB)
    assert len(bomb) < 2 * MiB
    bomb_id = publish(app, bomb, "application/x-gzip", "bomb")
    after = app.send_task("echo", ["after the bomb"])
    worker = subprocess.Popen([sys.executable, "-m", "corekit", "-A", "proj", "worker",
                               "-P", "solo", "-l", "info", "--no-banner"], cwd=tmp_path,
                              env={**os.environ, "TEST_BROKER": url}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    log: list[str] = []
    assert worker.stdout is not None
    reader = threading.Thread(target=lambda: log.extend(worker.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        assert after.get(timeout=60) == "after the bomb"
        deadline = time.monotonic() + 30
        while not app.producer.dead_letters() and time.monotonic() < deadline:
            time.sleep(0.05)
        peak = peak_rss_mib(worker.pid)
    finally:
        worker.terminate()
        worker.wait(30)
        app.close()
    print(f"worker peak RSS with a 1 GiB zlib bomb: {peak:.0f} MiB")
    assert peak < 16 + 200, f"peak RSS {peak:.0f} MiB\n{''.join(log)[-3000:]}"
    [letter] = Corekit("check", broker=url, backend=url).producer.dead_letters()
    assert letter.message.headers["id"] == bomb_id
    assert "over the limit of 16,777,216 bytes" in letter.reason
