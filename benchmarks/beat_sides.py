"""The two sides ``bench_beat.py`` compares: each system's project module
(one no-op task and a ``beat_schedule`` of N entries, all every minute or
all every ``BENCH_EVERY`` seconds), its beat as a real process, and an
observer process per beat that timestamps each message as it lands on the
broker.  What is measured, and the table, are in ``bench_beat.py``.

The observers read the broker as each system lays it out: corekit's Redis
transport keeps a queue as a sorted set of ids plus an envelope hash (see
``plugins/redis/transport.py``), so its observer goes through the
transport's layout (it wakes on the queue's wake-up list, not
by polling); kombu keeps Celery's queue as the list ``celery``, so that
observer BRPOPs it and drains what else is there.  Each writes one line per
message, ``<arrival unix time> <task id> <argsrepr>``, the arrival being its
``time.time()`` right after the broker answered.

    python benchmarks/beat_sides.py observe corekit|celery BROKER_URL OUT_FILE
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

SCHEDULE = '''
N = int(os.environ["BENCH_ENTRIES"])
EVERY = float(os.environ.get("BENCH_EVERY", "1"))
if os.environ["BENCH_SCENARIO"] == "minute":
    app.conf.beat_schedule = {{f"m{{i:05d}}": {{"task": "{module}.tick", "schedule": crontab(),
                                             "args": (i,)}} for i in range(N)}}
else:
    app.conf.beat_schedule = {{f"s{{i:05d}}": {{"task": "{module}.tick", "schedule": EVERY,
                                             "args": (i,)}} for i in range(N)}}
'''

CELERY_PROJ = '''
import os

from celery import Celery
from celery.schedules import crontab
from celery.signals import beat_init

app = Celery("beatc", broker=os.environ["BENCH_BROKER"])


@app.task(name="beatc.tick")
def tick(i):
    return None


@beat_init.connect
def _ready(**kwargs):
    path = os.environ.get("BENCH_READY_FILE")
    if path:
        open(path, "w").close()
''' + SCHEDULE.format(module="beatc")

COREKIT_PROJ = '''
import os

from corekit import Corekit
from corekit.schedules import crontab

app = Corekit("beatk", broker=os.environ["BENCH_BROKER"])


@app.task(name="beatk.tick")
def tick(i):
    return None
''' + SCHEDULE.format(module="beatk")

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    """user + system CPU of *pid* so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak RSS so far) of *pid*, in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def stop_process(proc: subprocess.Popen[bytes], grace: float = 30) -> None:
    """SIGTERM, then SIGKILL to its process group if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            log(f"pid {proc.pid} ignored SIGTERM for {grace:.0f} s; killing it")
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(10)


class Side:
    """One system: its project module in *workdir* and how its beat starts."""

    def __init__(self, name: str, workdir: Path, broker_url: str) -> None:
        self.name, self.workdir, self.broker_url = name, workdir, broker_url
        self.module = "beatc" if name == "Celery" else "beatk"
        (workdir / f"{self.module}.py").write_text(CELERY_PROJ if name == "Celery"
                                                   else COREKIT_PROJ)

    @staticmethod
    def python(tag: str) -> list[str]:
        """This Python, under cProfile when ``BENCH_BEAT_PROFILE`` names a directory."""
        py = [sys.executable]
        profile_dir = os.environ.get("BENCH_BEAT_PROFILE")
        if profile_dir:  # cProfile writes its file when the beat exits on SIGTERM
            Path(profile_dir).mkdir(parents=True, exist_ok=True)
            py += ["-m", "cProfile", "-o", str(Path(profile_dir) / f"{tag}.prof")]
        return py

    def env(self, tag: str) -> dict[str, str]:
        """Variables the beat needs beyond the BENCH_* of `start_beat`."""
        return {}

    def beat_cmd(self, tag: str) -> list[str]:
        py = self.python(tag)
        if self.name == "Celery":
            return [*py, "-m", "celery", "-A", self.module, "beat", "-l", "warning",
                    "-s", str(self.workdir / f"celerybeat-schedule-{tag}")]
        return [*py, "-m", "corekit", "-A", self.module, "beat", "-l", "warning"]

    def start_beat(self, scenario: str, entries: int, every: float, tag: str
                   ) -> tuple[subprocess.Popen[bytes], Path, Path]:
        """The beat process, its log and its ready file (Celery's beat_init writes it)."""
        ready = self.workdir / f"ready-{tag}"
        ready.unlink(missing_ok=True)
        log_path = self.workdir / f"beat-{tag}.log"
        env = {**os.environ, "BENCH_BROKER": self.broker_url, "BENCH_SCENARIO": scenario,
               "BENCH_ENTRIES": str(entries), "BENCH_EVERY": repr(every),
               "BENCH_READY_FILE": str(ready), **self.env(tag)}
        with log_path.open("wb") as out:
            proc = subprocess.Popen(self.beat_cmd(tag), cwd=self.workdir, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        return proc, log_path, ready

    def leads(self, ready: Path) -> bool:
        """Whether the beat leads: Celery's beat_init wrote *ready*; corekit's
        lease key is in the broker (its schedule store)."""
        if self.name == "Celery":
            return ready.exists()
        import redis

        client = redis.Redis.from_url(self.broker_url)
        try:
            return bool(client.exists("corekit:beat:lease"))
        finally:
            client.close()

    def stored_bases(self) -> dict[str, float]:
        """corekit: each entry's stored base (``changed_at``), from its store."""
        from beat_figures import stored_bases

        return stored_bases(self.broker_url)

    def start_observer(self, out_file: Path) -> subprocess.Popen[bytes]:
        kind = "celery" if self.name == "Celery" else "corekit"
        log_path = out_file.with_suffix(".log")
        with log_path.open("wb") as log_out:
            return subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "observe", kind,
                 self.broker_url, str(out_file)], cwd=self.workdir, stdout=log_out,
                stderr=subprocess.STDOUT, start_new_session=True)


# -- the observer processes --------------------------------------------------------

def observe_corekit(url: str, out: TextIO, stopped: list[bool]) -> None:
    """As light as Celery's observer: wait on the queue's wake-up list (what
    corekit's publish pushes), then take every id in the queue and read its
    envelope, straight from the Redis transport's layout; not a consumer's
    claim, which does far more work than a BRPOP and would share Redis with
    the beat under measurement."""
    import redis

    from corekit.plugins.redis.envelope import message

    client = redis.Redis.from_url(url)
    client.ping()
    prefix = "corekit:"
    _ready(out)
    while not stopped:
        if client.blpop([prefix + "wake:celery"], timeout=0.5) is None:
            continue
        now = repr(time.time())
        pipe = client.pipeline(transaction=True)
        pipe.zrange(prefix + "q:celery", 0, -1)
        pipe.delete(prefix + "q:celery", prefix + "wake:celery")
        ids = pipe.execute()[0]
        if not ids:
            continue
        raws = client.hmget(prefix + "msg", ids)
        client.hdel(prefix + "msg", *ids)
        client.hdel(prefix + "route", *ids)
        for tag, raw in zip(ids, raws):
            m = message(raw, int(tag), False)
            out.write(f"{now} {m.headers['id']} {m.headers.get('argsrepr')}\n")
        out.flush()


def observe_celery(url: str, out: TextIO, stopped: list[bool]) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.ping()
    _ready(out)
    while not stopped:
        first = client.brpop(["celery"], timeout=0.5)
        if first is None:
            continue
        now = repr(time.time())
        raws = [first[1], *(client.rpop("celery", 1000) or [])]
        for raw in raws:
            headers = json.loads(raw)["headers"]
            out.write(f"{now} {headers['id']} {headers.get('argsrepr')}\n")
        out.flush()
    client.close()


def _ready(out: TextIO) -> None:
    out.write("ready\n")
    out.flush()


def observe(kind: str, url: str, path: str) -> None:
    """Run until SIGTERM, writing a line per message into *path*."""
    stopped: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
    with open(path, "w") as out:
        (observe_corekit if kind == "corekit" else observe_celery)(url, out, stopped)


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "observe" or sys.argv[2] not in ("corekit", "celery"):
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    observe(*sys.argv[2:])
