"""The monitor's requests on Tornado: the Host check, auth, the static UI,
``/metrics`` and the JSON API.

One handler takes every path.  The API's routes are plain functions that
may wait on the broker (a worker's reply), so they run on the monitor's
small thread pool, never on the event loop; a large reply is written in
chunks, each waiting until the client took the last.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
from importlib import resources
from typing import TYPE_CHECKING, Any, Callable, Mapping
from urllib.parse import parse_qs, unquote

import tornado.web

from corekit.monitor.api import ApiError
from corekit.monitor.guard import check_action
from corekit.monitor.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

if TYPE_CHECKING:
    from corekit.monitor.server import Monitor

logger = logging.getLogger("corekit.monitor")

STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
                ".png": "image/png", ".ico": "image/x-icon"}
STATIC_NAME = re.compile(r"[A-Za-z0-9_-]+\.[a-z]+")
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                           "frame-ancestors 'none'",
                "X-Frame-Options": "DENY"}
#: A reply is written in chunks of this many bytes.
CHUNK = 256 * 1024


def application(monitor: Monitor) -> tornado.web.Application:
    return tornado.web.Application([(r".*", MonitorHandler, {"monitor": monitor})],
                                   log_function=_log_request, compress_response=False)


def _log_request(handler: tornado.web.RequestHandler) -> None:
    request = handler.request
    logger.debug("%s %s %s %d", request.remote_ip, request.method, request.uri,
                 handler.get_status())


class MonitorHandler(tornado.web.RequestHandler):
    """One request: the Host, then auth, then the UI, ``/metrics`` or the API."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")

    def initialize(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def set_default_headers(self) -> None:
        self.set_header("Server", "corekit-monitor")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def compute_etag(self) -> None:
        return None

    async def get(self) -> None:
        await self._handle("GET")

    async def head(self) -> None:
        await self._handle("HEAD")

    async def post(self) -> None:
        await self._handle("POST")

    async def put(self) -> None:
        await self._handle("PUT")

    async def delete(self) -> None:
        await self._handle("DELETE")

    async def patch(self) -> None:
        await self._handle("PATCH")

    async def options(self) -> None:
        await self._handle("OPTIONS")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Tornado's own refusals (a malformed body) as JSON too."""
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": self._reason}))

    async def _handle(self, method: str) -> None:
        request, monitor = self.request, self.monitor
        query = {k: v[-1] for k, v in parse_qs(request.query).items()}
        auth = monitor.auth
        try:
            monitor.hosts.check(request.headers.get("Host"))
            if not auth.allows(request.headers.get("Authorization"),
                               request.headers.get("Cookie"), query.get("token")):
                raise ApiError(401, "authentication required: basic auth, or the token as "
                                    "'Authorization: Bearer TOKEN'")
            if method == "GET" and request.path == "/" and "token" in query:
                # the browser keeps the token as a cookie and drops it from the URL
                self.set_header("Set-Cookie", auth.cookie_for(query["token"]))
                self._reply(303, b"", "text/plain", {"Location": "/"})
                return
            await self._dispatch(method, request.path, query)
        except ApiError as exc:
            extra = {"WWW-Authenticate": auth.challenge()} if exc.status == 401 else {}
            self._reply(exc.status, json.dumps({"error": exc.message}).encode(),
                        "application/json", extra)
        except Exception as exc:
            logger.exception("monitor: %s %s failed", method, request.uri)
            self._reply(500, json.dumps({"error": f"internal error: {exc}"}).encode(),
                        "application/json")

    async def _dispatch(self, method: str, path: str, query: Mapping[str, str]) -> None:
        if path in ("/", "/index.html"):
            _only_get(method, path)
            self._static("index.html")
        elif path.startswith("/static/"):
            _only_get(method, path)
            self._static(path[len("/static/"):])
        elif path == "/metrics":
            _only_get(method, path)
            text = await self._off_loop(self.monitor.api.metrics)
            self._reply(200, text.encode(), METRICS_CONTENT_TYPE)
        elif path.startswith("/api/"):
            await self._api(method, path, query)
        else:
            raise ApiError(404, f"not found: {path}")

    async def _api(self, method: str, path: str, query: Mapping[str, str]) -> None:
        decoded = "/".join(unquote(p) for p in path.split("/"))
        handler, params = self.monitor.api.route(method, decoded)
        if method == "POST":
            check_action(self.request.headers)
            argument: Any = _json_object(self.request.body)
        else:
            argument = query
        status, body = await self._off_loop(
            lambda: _encoded(handler(argument, **params)))
        await self._stream(status, body, "application/json")

    async def _off_loop(self, call: Callable[[], Any]) -> Any:
        """Run *call* on the monitor's thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.monitor.executor, call)

    def _static(self, name: str) -> None:
        suffix = name[name.rfind("."):] if "." in name else ""
        if not STATIC_NAME.fullmatch(name) or suffix not in STATIC_TYPES:
            raise ApiError(404, f"not found: {name}")
        resource = resources.files("corekit.monitor").joinpath("static", name)
        if not resource.is_file():
            raise ApiError(404, f"not found: {name}")
        self._reply(200, resource.read_bytes(), STATIC_TYPES[suffix],
                    PAGE_HEADERS if suffix == ".html" else {})

    def _head(self, status: int, content_type: str, length: int,
              extra: Mapping[str, str] | None) -> None:
        self.set_status(status)
        self.set_header("Content-Type", content_type)
        self.set_header("Content-Length", str(length))
        for name, value in (extra or {}).items():
            self.set_header(name, value)

    def _reply(self, status: int, body: bytes, content_type: str,
               extra: Mapping[str, str] | None = None) -> None:
        self._head(status, content_type, len(body), extra)
        self.finish(body)

    async def _stream(self, status: int, body: bytes, content_type: str) -> None:
        """Write *body* a chunk at a time; a client that does not take a
        chunk within the request timeout is dropped."""
        if len(body) <= CHUNK:
            self._reply(status, body, content_type)
            return
        self._head(status, content_type, len(body), None)
        view = memoryview(body)
        for start in range(0, len(body), CHUNK):
            self.write(bytes(view[start:start + CHUNK]))
            try:
                await asyncio.wait_for(self.flush(), self.monitor.request_timeout)
            except asyncio.TimeoutError:
                logger.info("monitor: %s did not read its reply; dropped", self.request.remote_ip)
                self.request.connection.close()  # type: ignore[union-attr]
                return
        self.finish()


def _only_get(method: str, path: str) -> None:
    if method != "GET":
        raise ApiError(405, f"{method} is not allowed on {path} (use GET)")


def _encoded(reply: tuple[int, Any]) -> tuple[int, bytes]:
    status, value = reply
    return status, json.dumps(value, default=str).encode()


def _json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body

