"""The web monitor under slow and greedy clients: a request that never
finishes is cut off, connections are limited, bodies are bounded, and
none of it costs a thread per connection."""
from __future__ import annotations

import resource
import selectors
import socket
import time
from pathlib import Path

import pytest

from corekit import Corekit
from corekit.monitor.server import Monitor
from monitor_helpers import call, cli_monitor, proc_status, wait_until

pytestmark = pytest.mark.timeout(120)

SLOW_BODIES = 450
SLOW_HEADERS = 50
TIMEOUT = 2.0


@pytest.fixture(autouse=True)
def enough_file_descriptors() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 <= hard or (soft < 4096 and hard == resource.RLIM_INFINITY):
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setblocking(False)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed *sock* (EOF or reset; any reply is read)."""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True


def test_slow_clients_are_cut_off_and_cost_no_threads(tmp_path: Path) -> None:
    with cli_monitor(f"sqlite://{tmp_path / 'b.sqlite3'}", "--request-timeout",
                     str(TIMEOUT)) as (proc, base):
        port = int(base.rsplit(":", 1)[1])
        assert call(base + "/api/workers").status == 200
        threads_before = proc_status(proc.pid, "Threads")
        # headers with a Content-Length, and then never the body
        bodies = [connect(port) for _ in range(SLOW_BODIES)]
        for sock in bodies:
            sock.sendall(b"POST /api/tasks/x/revoke HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        # headers a byte at a time, for longer than the timeout
        head = b"GET /api/workers HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 400
        trickles = [connect(port) for _ in range(SLOW_HEADERS)]
        started = time.monotonic()
        sent = 0

        def trickle() -> None:
            nonlocal sent
            for sock in trickles:
                try:
                    sock.send(head[sent:sent + 1])
                except OSError:
                    pass
            sent += 1

        trickle()
        # while they are all open: a normal request is answered at once
        answered = call(base + "/api/workers")
        assert answered.status == 200 and answered.json == {"workers": []}
        threads_during = proc_status(proc.pid, "Threads")
        assert threads_during <= threads_before + 12, (threads_before, threads_during)

        open_ = {s.fileno(): s for s in bodies + trickles}
        selector = selectors.DefaultSelector()
        for sock in open_.values():
            selector.register(sock, selectors.EVENT_READ)
        deadline = started + TIMEOUT * 3 + 10
        while open_ and time.monotonic() < deadline:
            trickle()  # a byte every 0.1 s does not keep a connection alive
            for key, _ in selector.select(timeout=0.1):
                sock = open_.get(key.fd)
                if sock is not None and closed_by_server(sock):
                    selector.unregister(sock)
                    del open_[key.fd]
        assert not open_, f"{len(open_)} slow connections still open after {TIMEOUT * 3 + 10} s"
        assert sent < len(head), "the trickled headers were all sent: the test proves nothing"
        for sock in bodies + trickles:
            sock.close()
        assert call(base + "/api/workers").status == 200
        assert proc_status(proc.pid, "Threads") <= threads_before + 12


def test_connections_past_the_limit_get_503(sqlite_app: Corekit) -> None:
    with Monitor(sqlite_app, port=0, max_connections=5, inspect_interval=0.3,
                 inspect_timeout=0.2) as monitor:
        port = int(monitor.url.rsplit(":", 1)[1])
        kept = []
        for _ in range(5):  # five kept-alive connections, each answered once
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"GET /api/workers HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            kept.append(sock)
        sixth = socket.create_connection(("127.0.0.1", port), timeout=10)
        sixth.sendall(b"GET /api/workers HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        reply = b""
        try:
            while chunk := sixth.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
        assert not reply.startswith(b"HTTP/1.1 200"), reply
        assert reply == b"" or reply.startswith(b"HTTP/1.1 503"), reply
        sixth.close()
        kept.pop().close()
        wait_until(lambda: call(monitor.url + "/api/workers").status == 200,
                   what="a free connection slot")
        for sock in kept:
            sock.close()


def test_a_body_past_the_limit_is_refused_before_it_is_read(sqlite_app: Corekit) -> None:
    with Monitor(sqlite_app, port=0, inspect_interval=0.3, inspect_timeout=0.2) as monitor:
        port = int(monitor.url.rsplit(":", 1)[1])
        huge = socket.create_connection(("127.0.0.1", port), timeout=10)
        huge.sendall(b"POST /api/tasks/x/revoke HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
        answer = huge.recv(65536)
        assert answer.split(b" ")[1] in (b"400", b"413"), answer
        huge.close()


def test_the_limit_stays_below_the_open_files_limit(tmp_path: Path) -> None:
    """With `ulimit -n 200`, 300 connections: those past the room left get
    503 instead of the server failing every accept; it answers afterwards."""
    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, resource.getrlimit(
            resource.RLIMIT_NOFILE)[1]))

    with cli_monitor(f"sqlite://{tmp_path / 'b.sqlite3'}", preexec_fn=low_limit) as (_, base):
        port = int(base.rsplit(":", 1)[1])
        socks = [connect(port) for _ in range(300)]
        for sock in socks:
            sock.sendall(b"GET /api/workers HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        statuses: dict[bytes, int] = {}
        deadline = time.monotonic() + 30
        pending = list(socks)
        while pending and time.monotonic() < deadline:
            waiting = []
            for sock in pending:
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    waiting.append(sock)
                    continue
                except ConnectionResetError:
                    data = b"reset"
                status = data.split(b" ")[1] if data.startswith(b"HTTP/") else data[:5]
                statuses[status] = statuses.get(status, 0) + 1
            pending = waiting
            time.sleep(0.05)
        assert not pending, f"{len(pending)} connections got no answer: {statuses}"
        assert statuses.get(b"200", 0) >= 100 and statuses.get(b"503", 0) >= 100, statuses
        for sock in socks:
            sock.close()
        wait_until(lambda: call(base + "/api/workers").status == 200, what="an answer")
