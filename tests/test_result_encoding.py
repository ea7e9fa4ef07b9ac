"""A result the result serializer cannot encode fails that one task
(FAILURE with an EncodeError, Celery's shape), never the worker's result
writer: the rest of its batch is stored, later tasks run, acks_late acks
are released and a warm shutdown finishes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from corekit import Corekit, states
from corekit.exceptions import EncodeError
from corekit.testing import start_worker


class Opaque:
    """Nothing JSON can encode."""


@pytest.fixture(params=["sqlite", "redis"])
def app(request: pytest.FixtureRequest) -> Corekit:
    return request.getfixturevalue(f"{request.param}_app")


@pytest.mark.parametrize("acks_late", [False, True], ids=["early-ack", "acks-late"])
def test_an_unencodable_result_fails_only_its_task(app: Corekit, acks_late: bool) -> None:
    app.conf.worker_prefetch_multiplier = 1

    @app.task(acks_late=acks_late)
    def make(kind: str, i: int) -> object:
        return Opaque() if kind == "bad" else i

    with start_worker(app, concurrency=2):
        results = [make.delay("bad" if i == 5 else "good", i) for i in range(12)]
        bad = results[5]
        with pytest.raises(EncodeError, match="Opaque") as info:
            bad.get(timeout=10)
        assert "json" in str(info.value)
        assert bad.state == states.FAILURE
        meta = app.backend.get_task_meta(bad.id)
        assert meta["result"]["exc_type"] == "EncodeError"
        assert meta["result"]["exc_module"] == "kombu.exceptions"
        assert [r.get(timeout=10) for i, r in enumerate(results) if i != 5] == \
            [i for i in range(12) if i != 5]
        later = [make.delay("good", i) for i in range(20)]  # the worker goes on
        assert [r.get(timeout=10) for r in later] == list(range(20))


PROJ = '''
import os
from corekit import Corekit
URL = os.environ["TEST_URL"]
app = Corekit("proj", broker=URL, backend=URL, broker_heartbeat=0.2,
              broker_lease_timeout=2.0, worker_prefetch_multiplier=1)

class Opaque:
    pass

@app.task(name="proj.make", acks_late=True)
def make(kind, i):
    return Opaque() if kind == "bad" else i
'''


@pytest.mark.parametrize("broker", ["sqlite", "redis"])
def test_a_warm_shutdown_finishes_after_an_unencodable_result(
        broker: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = (f"sqlite://{tmp_path / 'broker.sqlite3'}" if broker == "sqlite"
           else str(request.getfixturevalue("redis_url")))
    (tmp_path / "proj.py").write_text(PROJ)
    env = {**os.environ, "TEST_URL": url}
    worker = subprocess.Popen([sys.executable, "-m", "corekit", "-A", "proj", "worker", "-l",
                               "info", "--no-banner", "-c", "1"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert worker.stdout is not None
        lines = []
        for line in worker.stdout:
            lines.append(line)
            if "ready." in line:
                break
        client = subprocess.run(
            [sys.executable, "-c",
             "import proj\n"
             "bad = proj.make.delay('bad', 0)\n"
             "good = [proj.make.delay('good', i) for i in range(5)]\n"
             "print(type(bad.get(timeout=20, propagate=False)).__name__)\n"
             "print([r.get(timeout=20) for r in good])\n"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert client.returncode == 0, client.stderr
        assert client.stdout.split() == ["EncodeError", "[0,", "1,", "2,", "3,", "4]"]
        worker.send_signal(signal.SIGTERM)
        rest = worker.communicate(timeout=30)[0]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    output = "".join(lines) + rest
    assert worker.returncode == 0, output
    assert "retrying" not in output, output
