"""The web monitor's HTTP server: the static UI, the JSON API and ``/metrics``.

Standard library only (``http.server.ThreadingHTTPServer``): the monitor is
a handful of JSON endpoints and three static files, and a web framework
would be a dependency of every corekit install for that.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from corekit.monitor.api import Api, ApiError
from corekit.monitor.auth import Auth, check_bind
from corekit.monitor.collector import Collector
from corekit.monitor.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

if TYPE_CHECKING:
    from corekit.app import Corekit

logger = logging.getLogger("corekit.monitor")

#: A POST body larger than this is refused (413): actions take a few fields.
MAX_BODY = 64 * 1024
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
                ".png": "image/png", ".ico": "image/x-icon"}
STATIC_NAME = re.compile(r"[A-Za-z0-9_-]+\.[a-z]+")
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                           "frame-ancestors 'none'",
                "X-Frame-Options": "DENY"}


class Monitor:
    """``corekit monitor``: a `Collector` and an HTTP server in front of it.

    `serve_forever` blocks (the CLI); `start` serves from a thread (tests).
    Port 0 picks a free port; `url` says which.
    """

    def __init__(self, app: Corekit, *, address: str = "127.0.0.1", port: int = 5555,
                 auth: Auth | None = None, inspect_interval: float = 5.0,
                 inspect_timeout: float = 1.0, reply_timeout: float = 2.0) -> None:
        self.auth = auth or Auth()
        check_bind(address, self.auth)
        self.collector = Collector(app, inspect_interval=inspect_interval,
                                   inspect_timeout=inspect_timeout)
        self.api = Api(self.collector, reply_timeout=reply_timeout)
        self.server = ThreadingHTTPServer((address, port), _handler_for(self))
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        host = str(host)
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def serve_forever(self) -> None:
        """Collect and serve until `close` (or Ctrl-C in this thread)."""
        self.collector.start()
        self.server.serve_forever(poll_interval=0.5)

    def start(self) -> Monitor:
        """Collect and serve from background threads."""
        self._thread = threading.Thread(target=self.serve_forever, name="corekit-monitor-http",
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(5)
        self.server.server_close()
        self.collector.stop()

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler_for(monitor: Monitor) -> type[BaseHTTPRequestHandler]:
    class Handler(MonitorRequestHandler):
        pass

    Handler.monitor = monitor
    return Handler


class MonitorRequestHandler(BaseHTTPRequestHandler):
    """One request: authenticate, then the UI, ``/metrics`` or the API."""

    monitor: Monitor
    server_version = "corekit-monitor"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        auth = self.monitor.auth
        try:
            body = self._read_body()
            if not auth.allows(self.headers.get("Authorization"), self.headers.get("Cookie"),
                               query.get("token")):
                raise ApiError(401, "authentication required: basic auth, or the token as "
                                    "'Authorization: Bearer TOKEN'")
            if method == "GET" and parts.path == "/" and "token" in query:
                # the browser keeps the token as a cookie and drops it from the URL
                self._send(303, b"", "text/plain", {"Location": "/",
                                                   "Set-Cookie": auth.cookie_for(query["token"])})
                return
            self._dispatch(method, parts.path, query, body)
        except ApiError as exc:
            extra = {"WWW-Authenticate": auth.challenge()} if exc.status == 401 else {}
            self._send_json(exc.status, {"error": exc.message}, extra)
        except Exception as exc:
            logger.exception("monitor: %s %s failed", method, self.path)
            self._send_json(500, {"error": f"internal error: {exc}"})

    def _dispatch(self, method: str, path: str, query: Mapping[str, str], body: bytes
                  ) -> None:
        if path in ("/", "/index.html"):
            self._only_get(method, path)
            self._static("index.html")
        elif path.startswith("/static/"):
            self._only_get(method, path)
            self._static(path[len("/static/"):])
        elif path == "/metrics":
            self._only_get(method, path)
            self._send(200, self.monitor.api.metrics().encode(), METRICS_CONTENT_TYPE)
        elif path.startswith("/api/"):
            self._api(method, path, query, body)
        else:
            raise ApiError(404, f"not found: {path}")

    def _api(self, method: str, path: str, query: Mapping[str, str], body: bytes) -> None:
        decoded = "/".join(unquote(p) for p in path.split("/"))
        handler, params = self.monitor.api.route(method, decoded)
        if method == "POST":
            self._same_origin_only()
            status, value = handler(self._json(body), **params)
        else:
            status, value = handler(query, **params)
        self._send_json(status, value)

    def _only_get(self, method: str, path: str) -> None:
        if method != "GET":
            raise ApiError(405, f"{method} is not allowed on {path} (use GET)")

    def _same_origin_only(self) -> None:
        """Refuse actions a page of another site makes the browser send."""
        if self.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site"):
            raise ApiError(403, "cross-site requests may not act on the cluster")
        origin = self.headers.get("Origin")
        if origin and origin != "null" and urlsplit(origin).netloc != self.headers.get("Host"):
            raise ApiError(403, f"requests from {origin} may not act on the cluster")

    def _read_body(self) -> bytes:
        """The request body, read before anything else so that a refused
        request leaves the kept-alive connection clean."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise ApiError(400, "bad Content-Length") from None
        if length > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, f"the body is over {MAX_BODY} bytes")
        return self.rfile.read(length) if length > 0 else b""

    def _json(self, raw: bytes) -> dict[str, Any]:
        if not raw.strip():
            return {}
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if kind != "application/json":
            raise ApiError(415, "send the body as application/json")
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        return body

    def _static(self, name: str) -> None:
        suffix = name[name.rfind("."):] if "." in name else ""
        if not STATIC_NAME.fullmatch(name) or suffix not in STATIC_TYPES:
            raise ApiError(404, f"not found: {name}")
        resource = resources.files("corekit.monitor").joinpath("static", name)
        if not resource.is_file():
            raise ApiError(404, f"not found: {name}")
        self._send(200, resource.read_bytes(), STATIC_TYPES[suffix],
                   PAGE_HEADERS if suffix == ".html" else {})

    def _send_json(self, status: int, value: Any, extra: Mapping[str, str] | None = None
                   ) -> None:
        body = json.dumps(value, default=str).encode()
        self._send(status, body, "application/json", extra or {})

    def _send(self, status: int, body: bytes, content_type: str,
              extra: Mapping[str, str] | None = None) -> None:
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
