"""``corekit multi``'s arguments: nodes, per-node options, ``%`` expansion,
and the command lines it would run (beside Celery's ``celery multi``)."""
from __future__ import annotations

import re
import shlex
import signal
import socket
import sys
from pathlib import Path

import pytest

from corekit.cli.multi import worker_parser
from corekit.cli.multi_nodes import (MultiUsageError, Option, WorkerOptions, build_nodes,
                                     expand, split_args)
from helpers import run_cli

HOST = socket.gethostname()


@pytest.fixture(scope="module")
def workers() -> WorkerOptions:
    from corekit.cli import common_options

    dests = {a.dest for a in common_options()._actions if a.option_strings}
    return WorkerOptions.from_parser(worker_parser(), dests)


def nodes(argv: str, workers: WorkerOptions, cwd: str = "/srv", **kw):  # type: ignore[no-untyped-def]
    return build_nodes(split_args(shlex.split(argv), workers), workers, cwd=cwd,
                       executable="python", **kw)


def worker_args(node) -> list[str]:  # type: ignore[no-untyped-def]
    """The node's arguments after ``worker --detach``."""
    return node.argv[node.argv.index("--detach") + 1:]


def test_a_count_names_nodes_corekit1_to_n(workers: WorkerOptions) -> None:
    found = nodes("3 -c 3", workers)
    assert [n.name for n in found] == [f"corekit{i}@{HOST}" for i in (1, 2, 3)]
    assert found[0].argv == ["python", "-m", "corekit", "worker", "--detach", "-c", "3",
                             "-n", f"corekit1@{HOST}", "--pidfile=/srv/corekit1.pid",
                             "--logfile=/srv/corekit1%I.log"]
    assert found[0].pidfile == "/srv/corekit1.pid"
    assert found[0].logfile == "/srv/corekit1.log"  # as the main process names it


def test_names_full_names_and_the_hostname_option(workers: WorkerOptions) -> None:
    assert [n.name for n in nodes("image video", workers)] == [f"image@{HOST}",
                                                               f"video@{HOST}"]
    assert [n.name for n in nodes("w1@example.com w2@%h", workers)] == ["w1@example.com",
                                                                        f"w2@{HOST}"]
    assert [n.name for n in nodes("2 --hostname=w.example.com", workers)] == [
        "corekit1@w.example.com", "corekit2@w.example.com"]
    assert [n.name for n in nodes("a b --prefix=x-", workers)] == [f"x-a@{HOST}",
                                                                   f"x-b@{HOST}"]
    assert [n.name for n in nodes("2 --range-prefix=w", workers)] == [f"w1@{HOST}",
                                                                      f"w2@{HOST}"]


def test_per_node_options_by_index_range_list_and_name(workers: WorkerOptions) -> None:
    found = nodes("5 -c 3 -c:1-2 10 -c:4,5 1 -Q:corekit3 three -Q:5 five", workers)
    assert [worker_args(n)[:4] for n in found] == [
        ["-c", "10", "-n", f"corekit1@{HOST}"], ["-c", "10", "-n", f"corekit2@{HOST}"],
        ["-c", "3", "-Q", "three"], ["-c", "1", "-n", f"corekit4@{HOST}"],
        ["-c", "1", "-Q", "five"]]
    found = nodes("image video -c:image 2 -Q:image images -Q:video video", workers)
    assert worker_args(found[0])[:4] == ["-c", "2", "-Q", "images"]
    assert worker_args(found[1])[:2] == ["-Q", "video"]
    # a per-node option wins wherever it is; aliases are one option (-c, --concurrency)
    found = nodes("2 -c:1 10 --concurrency=4", workers)
    assert worker_args(found[0])[:2] == ["-c", "10"]
    assert worker_args(found[1])[:1] == ["--concurrency=4"]


def test_options_that_take_a_value_are_known_from_the_worker(workers: WorkerOptions) -> None:
    """Celery's parser guesses (a long option's value must follow '='; a short
    flag eats the next word); this one asks the worker's parser."""
    found = nodes("2 --loglevel:2 debug -E", workers)
    assert "--loglevel=debug" not in worker_args(found[0])
    assert worker_args(found[1])[:2] == ["-E", "--loglevel=debug"]
    found = nodes("-E image video -c3 -Ofair", workers)  # -E is a flag: image is a node
    assert [n.shortname for n in found] == ["image", "video"]
    assert worker_args(found[0])[:4] == ["-E", "-c", "3", "-O"]


def test_repeatable_options_add_up(workers: WorkerOptions) -> None:
    found = nodes("2 --plugin a --plugin b --plugin:2 c", workers)
    assert found[0].argv[3:7] == ["--plugin=a", "--plugin=b", "worker", "--detach"]
    assert found[1].argv[3:8] == ["--plugin=a", "--plugin=b", "--plugin=c", "worker",
                                  "--detach"]


def test_corekit_options_go_before_worker(workers: WorkerOptions) -> None:
    found = nodes("1 -l info -A proj -b sqlite:///tmp/x.db", workers,
                  before=[Option("--app", "other"), Option("--config", "settings")])
    # given before multi (corekit -A other multi ...): the nodes' own -A wins
    assert found[0].argv[:8] == ["python", "-m", "corekit", "-A", "proj", "--config=settings",
                                 "-b", "sqlite:///tmp/x.db"]
    assert found[0].argv[found[0].argv.index("worker"):][:4] == ["worker", "--detach", "-l",
                                                                   "info"]


def test_percent_expansion(workers: WorkerOptions) -> None:
    node = nodes("w1@box.example.com", workers)[0]
    assert node.expand("%n|%N|%p|%h|%d|%i|%I|%%|%x|100%") == \
        "w1|w1@box.example.com|w1@box.example.com|box.example.com|example.com|%i|%I|%|%x|100%"
    node = nodes("2 -Q:2 q-%n --pidfile=run/%n.pid --logfile=/var/log/%N%I.log "
                 "-b redis://:p%40ss@h/0", workers)[1]
    assert "q-corekit2" in node.argv
    assert f"--logfile=/var/log/corekit2@{HOST}%I.log" in node.argv
    assert "--pidfile=/srv/run/corekit2.pid" in node.argv
    assert "redis://:p%40ss@h/0" in node.argv  # an escaped URL is left alone
    # %% stays %% in the file names (the worker expands them once more)
    node = nodes("1 --logfile=100%%-%n.log", workers)[0]
    assert "--logfile=/srv/100%%-corekit1.log" in node.argv
    assert node.logfile == "/srv/100%-corekit1.log"
    assert expand("%i-%n", "a@b") == "%i-a"


def test_relative_paths_are_made_absolute(workers: WorkerOptions, tmp_path: Path) -> None:
    node = nodes("1 --pidfile=run/%n.pid --logfile=../log/%n.log", workers,
                 cwd=str(tmp_path))[0]
    assert node.pidfile == str(tmp_path / "run/corekit1.pid")
    assert node.logfile == str(tmp_path.parent / "log/corekit1.log")
    node = nodes("1 --workdir=/srv/app", workers)[0]  # the worker's own workdir
    assert node.pidfile == "/srv/app/corekit1.pid"
    assert not (tmp_path / "run").exists()  # only start makes directories


def test_passthrough_after_double_dash(workers: WorkerOptions) -> None:
    node = nodes("1 -c 2 -- -Q:1 literal %n", workers)[0]
    assert node.argv[-3:] == ["-Q:1", "literal", "%n"]


def test_signals_for_stop(workers: WorkerOptions) -> None:
    assert split_args(["3", "-KILL"], workers, with_signal=True).signal == signal.SIGKILL
    assert split_args(["3", "-9"], workers, with_signal=True).signal == 9
    assert split_args(["3", "-SIGINT", "-c", "2"], workers, with_signal=True).signal == \
        signal.SIGINT
    assert split_args(["3", "-E"], workers, with_signal=True).signal is None  # a worker flag
    parsed = split_args(["3", "-KILL"], workers, with_signal=True)
    assert all("-KILL" not in n.argv for n in build_nodes(parsed, workers))


@pytest.mark.parametrize("argv, message", [
    ("", "no nodes given"),
    ("0", "1 or more"),
    ("a a", "given twice"),
    ("3 -c:4 2", "selector '4' names no node: '4' is neither an index 1-3"),
    ("3 -c:2-5 2", "corekit1@"),
    ("a b -c:c 2", f"(a@{HOST}, b@{HOST})"),
    ("3 -c: 2", "has no selector"),
    ("3 --hostname:1 x", "is for every node"),
    ("3 --prefix", "--prefix needs a value"),
])
def test_bad_nodes_say_why(workers: WorkerOptions, argv: str, message: str) -> None:
    with pytest.raises(MultiUsageError, match=re.escape(message)):
        nodes(argv, workers)


# -- beside Celery --------------------------------------------------------------
CELERY_CASES = [
    "3 -c 3",
    "3 -c 3 -c:1 10",
    "image video data -c 3 -c:image 10",
    "5 -c 3 -c:1-3 10",
    "foo bar baz xuzzy -c 3 -c:foo,bar,baz 10",
    "10 -l INFO -Q:1-3 images,video -Q:4,5 data -Q default -l:4,5 DEBUG",
    "2 -A proj --loglevel=info -E",
    "foo@example.com bar@example.com -c 3",
    "2 --hostname=worker.example.com -c 3",
    "image video -Q:image images --time-limit=%n",
]


@pytest.mark.parametrize("argv", CELERY_CASES)
def test_show_is_celery_multis_with_celery_renamed(workers: WorkerOptions, tmp_path: Path,
                                                    argv: str) -> None:
    """The commands Celery's multi makes of the same arguments (its parser,
    run in this process), with celery renamed corekit; pid and log files
    given (Celery's defaults are under /var)."""
    multi = pytest.importorskip("celery.apps.multi")
    files = f" --pidfile={tmp_path}/%n.pid --logfile={tmp_path}/%n%I.log"
    parser = multi.NamespacedOptionParser(shlex.split(argv + files))
    parser.parse()
    theirs = []
    for node in multi.MultiParser(cmd=None).parse(parser):
        words = " ".join(node.argv_with_executable).split()
        words = ["corekit" if w == "celery" else re.sub(r"\bcelery(\d+)", r"corekit\1", w)
                 for w in words if not w.startswith("--executable=")]
        theirs.append(words)
    ours = [n.argv for n in build_nodes(split_args(shlex.split(argv + files), workers),
                                        workers, executable=sys.executable)]
    assert ours == theirs


# -- the command ---------------------------------------------------------------------
def test_show_names_get_and_expand_from_the_command_line(tmp_path: Path) -> None:
    out = run_cli("multi", "names", "2", "-c", "3", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.split() == [f"corekit1@{HOST}",
                                                          f"corekit2@{HOST}"]
    (tmp_path / "proj.py").write_text("from corekit import Corekit\napp = Corekit('proj')\n")
    out = run_cli("-A", "proj", "multi", "show", "image", "video", "-c:image", "2",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == (f"{sys.executable} -m corekit --app=proj worker --detach -c 2 -n "
                        f"image@{HOST} --pidfile={tmp_path}/image.pid "
                        f"--logfile={tmp_path}/image%I.log")
    assert " -c " not in lines[1]
    out = run_cli("multi", "get", "video", "image", "video", cwd=tmp_path)
    assert out.stdout.startswith(sys.executable) and f"-n video@{HOST}" in out.stdout
    out = run_cli("multi", "expand", "%n.log", "2", cwd=tmp_path)
    assert out.stdout.split() == ["corekit1.log", "corekit2.log"]
    assert not list(tmp_path.glob("*.pid")) and not list(tmp_path.glob("*.log"))


def test_dry_run_starts_and_creates_nothing(tmp_path: Path) -> None:
    out = run_cli("multi", "start", "2", "--dry-run", "--pidfile=run/%n.pid", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1:] == [
        "> Starting nodes...",
        f"\t> corekit1@{HOST}: would run: {sys.executable} -m corekit worker --detach "
        f"--pidfile={tmp_path}/run/corekit1.pid -n corekit1@{HOST} "
        f"--logfile={tmp_path}/corekit1%I.log",
        f"\t> corekit2@{HOST}: would run: {sys.executable} -m corekit worker --detach "
        f"--pidfile={tmp_path}/run/corekit2.pid -n corekit2@{HOST} "
        f"--logfile={tmp_path}/corekit2%I.log"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["strat", "2"], "unknown command 'strat' (did you mean start?)"),
    (["stpo", "2"], "unknown command 'stpo' (did you mean stop?)"),
    ([], "a command is needed"),
    (["show", "3", "-c:7", "2"], "selector '7' names no node"),
    (["show"], "no nodes given"),
])
def test_bad_input_prints_the_usage(tmp_path: Path, argv: list[str], message: str) -> None:
    out = run_cli("multi", *argv, cwd=tmp_path)
    assert out.returncode == 2
    assert "usage: corekit multi start" in out.stderr
    assert f"corekit multi: error: {message}" in out.stderr
    assert out.stdout == ""


def test_help(tmp_path: Path) -> None:
    for argv in (["multi", "help"], ["multi", "--help"], ["multi", "start", "--help"]):
        out = run_cli(*argv, cwd=tmp_path)
        assert out.returncode == 0 and "corekit multi stopwait" in out.stdout, argv
    assert list(tmp_path.iterdir()) == []
