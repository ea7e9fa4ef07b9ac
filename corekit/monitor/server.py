"""The web monitor's server: Tornado's HTTP server on an event loop thread.

Tornado (Flower's server) brings what a server exposed to a network needs
and ``http.server`` lacked: a deadline for a request's headers (which is
also the keep-alive idle timeout) and one for its body, bounded headers,
bodies and read buffers, and no thread per connection.  On top of it the
monitor limits the open connections (`LimitedHTTPServer`).
"""
from __future__ import annotations

import asyncio
import logging
import resource
import socket
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Iterable

from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream
from tornado.netutil import bind_sockets

from corekit.monitor.api import Api
from corekit.monitor.auth import Auth, check_bind
from corekit.monitor.collector import Collector
from corekit.monitor.guard import AllowedHosts
from corekit.monitor.periodic import PeriodicRoutes
from corekit.monitor.web import application

if TYPE_CHECKING:
    from corekit.app import Corekit

logger = logging.getLogger("corekit.monitor")

#: Seconds a client has to send a request's headers (and an idle kept-alive
#: connection waits for the next request), and again for its body.
REQUEST_TIMEOUT = 10.0
#: Connections open at once; past it a new one gets 503 and is closed.
MAX_CONNECTIONS = 1000
#: A POST body larger than this is refused (400) and its connection closed.
MAX_BODY = 64 * 1024
#: Request line and headers, at most.
MAX_HEADER = 32 * 1024
#: Threads that run the API's routes (they may wait on a worker's reply).
ROUTE_THREADS = 4
#: Pending connections the kernel keeps before the server accepts them.
BACKLOG = 1024
#: File descriptors kept free of connections (the broker's, the result backend's...).
SPARE_FDS = 64
REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
           b"Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n")


class LimitedHTTPServer(HTTPServer):
    """Tornado's HTTP server, refusing connections past *max_connections*."""

    max_connections = MAX_CONNECTIONS
    open_connections = 0
    #: who refuses, in the log line
    label = "monitor"

    def handle_stream(self, stream: IOStream, address: tuple[Any, ...]) -> None:
        if self.open_connections >= self.max_connections:
            logger.info("%s: %d connections open; refusing %s", self.label,
                        self.open_connections, address[0])
            stream.write(REFUSED).add_done_callback(lambda done: _close(stream, done))
            return
        self.open_connections += 1
        super().handle_stream(stream, address)

    def on_close(self, server_conn: object) -> None:
        self.open_connections -= 1
        super().on_close(server_conn)


def connection_room(wanted: int) -> int:
    """*wanted*, or fewer when the open-files limit would not leave room for
    them (a server out of descriptors fails every accept, in a busy loop)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or wanted <= soft - SPARE_FDS:
        return wanted
    room = max(soft - SPARE_FDS, 1)
    logger.warning("monitor: at most %d connections, not %d: the open files limit is %d "
                   "(ulimit -n)", room, wanted, soft)
    return room


def _close(stream: IOStream, written: Future[None] | asyncio.Future[None]) -> None:
    written.exception()  # a client that left already: nothing to report
    stream.close()


class Monitor:
    """``corekit monitor``: a `Collector` and an HTTP server in front of it.

    `serve_forever` blocks (the CLI); `start` serves from a thread (tests).
    Port 0 picks a free port; `url` says which.  *allowed_hosts* are names
    the monitor answers to besides its address and ``localhost`` (None: the
    app's ``monitor_allowed_hosts`` setting).
    """

    def __init__(self, app: Corekit, *, address: str = "127.0.0.1", port: int = 5555,
                 auth: Auth | None = None, allowed_hosts: Iterable[str] | None = None,
                 inspect_interval: float = 5.0, inspect_timeout: float = 1.0,
                 reply_timeout: float = 2.0, request_timeout: float = REQUEST_TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.auth = auth or Auth()
        check_bind(address, self.auth)
        if allowed_hosts is None:
            allowed_hosts = app.conf.get("monitor_allowed_hosts") or ()
        self.hosts = AllowedHosts(address, allowed_hosts)
        self.request_timeout = request_timeout
        self.max_connections = connection_room(max_connections)
        self.collector = Collector(app, inspect_interval=inspect_interval,
                                   inspect_timeout=inspect_timeout,
                                   max_field_size=int(app.conf.get("event_max_field_size") or 0))
        self.api = Api(self.collector, reply_timeout=reply_timeout)
        self.periodic = PeriodicRoutes(app)
        self.api.routes.extend(self.periodic.routes())
        self.sockets: list[socket.socket] = bind_sockets(port, address, backlog=BACKLOG)
        self.executor = ThreadPoolExecutor(ROUTE_THREADS, thread_name_prefix="corekit-monitor")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._serving = threading.Event()

    @property
    def url(self) -> str:
        host, port = self.sockets[0].getsockname()[:2]
        host = str(host)
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def serve_forever(self) -> None:
        """Collect and serve until `close` (or Ctrl-C in this thread)."""
        self.collector.start()
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = LimitedHTTPServer(
            application(self), idle_connection_timeout=self.request_timeout,
            body_timeout=self.request_timeout, max_body_size=MAX_BODY,
            max_header_size=MAX_HEADER, max_buffer_size=MAX_BODY + MAX_HEADER)
        server.max_connections = self.max_connections
        server.add_sockets(self.sockets)
        self._serving.set()
        try:
            await self._stop.wait()
        finally:
            server.stop()
            try:
                await asyncio.wait_for(server.close_all_connections(), 5)
            except asyncio.TimeoutError:
                logger.warning("monitor: connections still open at exit")

    def request_stop(self) -> bool:
        """Ask `serve_forever` to end, from any thread or a signal handler;
        False when it is not serving yet."""
        loop, stop = self._loop, self._stop
        if loop is None or stop is None:
            return False
        try:
            loop.call_soon_threadsafe(stop.set)
        except RuntimeError:  # the loop has ended
            return False
        return True

    def start(self) -> Monitor:
        """Collect and serve from background threads."""
        self._thread = threading.Thread(target=self.serve_forever, name="corekit-monitor-http",
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._serving.wait(5)
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop ended already (Ctrl-C in serve_forever)
                pass
        if self._thread is not None:
            self._thread.join(10)
        for sock in self.sockets:
            sock.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.collector.stop()
        self.periodic.close()

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
