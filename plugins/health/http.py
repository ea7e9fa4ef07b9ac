"""The HTTP health checks: Tornado's server on an event loop thread of its own.

``GET /healthz`` and ``/readyz``: 200 while the worker consumes, 503 with
the reason otherwise (starting, broker lost, stalled, shutting down).
``GET /livez``: 200 unless the consumer loop is stalled; a lost broker is
not a reason to restart the worker.  The body is the `Health.report` as
JSON.  Tornado (the web monitor's server) brings request deadlines,
bounded headers and no thread per connection; at most `MAX_CONNECTIONS`
are open at once.
"""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from typing import TYPE_CHECKING

import tornado.web
from tornado.netutil import bind_sockets

from corekit.exceptions import ImproperlyConfigured
from corekit.monitor.server import LimitedHTTPServer

if TYPE_CHECKING:
    from corekit.plugins.health.check import Health

logger = logging.getLogger("corekit.health")

#: Seconds a client has to send its request (and an idle kept-alive connection lasts).
REQUEST_TIMEOUT = 5.0
MAX_CONNECTIONS = 64
MAX_HEADER = 8 * 1024

#: path -> the field of the report that makes it 200
CHECKS = {"/healthz": "ready", "/readyz": "ready", "/livez": "live"}


class HealthHandler(tornado.web.RequestHandler):
    def initialize(self, health: Health) -> None:
        self.health = health

    def set_default_headers(self) -> None:
        self.set_header("Server", "corekit-health")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Type", "application/json")

    def get(self) -> None:
        check = CHECKS.get(self.request.path)
        if check is None:
            self.set_status(404)
            self.finish(json.dumps({"error": "not found", "checks": sorted(CHECKS)}))
            return
        report = self.health.report()
        self.set_status(200 if report[check] else 503)
        self.finish(json.dumps(report))

    def write_error(self, status_code: int, **kwargs: object) -> None:
        self.finish(json.dumps({"error": self._reason}))  # 405 for a POST, say

    def compute_etag(self) -> None:
        return None

    head = get


def _log_request(handler: tornado.web.RequestHandler) -> None:
    request = handler.request
    logger.debug("health: %s %s %s %d", request.remote_ip, request.method, request.uri,
                 handler.get_status())


class HealthServer:
    """Listens on *host*:*port* at once (a port in use is an error at start-up)
    and serves from a daemon thread until `close`."""

    def __init__(self, health: Health, host: str, port: int) -> None:
        self.health = health
        try:
            self.sockets: list[socket.socket] = bind_sockets(port, host, backlog=128)
        except OSError as exc:
            raise ImproperlyConfigured(
                f"health checks cannot listen on {host}:{port} (worker_health_host, "
                f"worker_health_port): {exc.strerror or exc}") from None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._serving = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve()),
                                       name="corekit-health-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.sockets[0].getsockname()[:2]
        return f"http://{f'[{host}]' if ':' in str(host) else host}:{port}"

    def start(self) -> None:
        self.thread.start()
        self._serving.wait(10)
        logger.info("health: serving %s/healthz, /readyz and /livez", self.url)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = tornado.web.Application([(r".*", HealthHandler, {"health": self.health})],
                                      log_function=_log_request, compress_response=False)
        server = LimitedHTTPServer(app, idle_connection_timeout=REQUEST_TIMEOUT,
                                   body_timeout=REQUEST_TIMEOUT, max_body_size=0,
                                   max_header_size=MAX_HEADER, max_buffer_size=MAX_HEADER)
        server.max_connections, server.label = MAX_CONNECTIONS, "health"
        server.add_sockets(self.sockets)
        self._serving.set()
        try:
            await self._stop.wait()
        finally:
            server.stop()
            await server.close_all_connections()

    def close(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop ended already
                pass
        if self.thread.is_alive():
            self.thread.join(5)
        self.close_sockets()

    def close_sockets(self) -> None:
        for sock in self.sockets:
            sock.close()
