"""Who may reach the web monitor (the Host header, against DNS rebinding)
and what may act on the cluster (JSON only, same origin only): requests
as a hostile page's browser would send them, against a real monitor."""
from __future__ import annotations

from typing import Any

import pytest

from corekit import Corekit
from corekit.monitor.auth import Auth
from corekit.monitor.server import Monitor
from monitor_helpers import call, cli_monitor

pytestmark = pytest.mark.timeout(90)

ROUTES = [("GET", "/"), ("GET", "/index.html"), ("GET", "/static/app.js"), ("GET", "/metrics"),
          ("GET", "/api/workers"), ("GET", "/api/tasks"), ("GET", "/api/nothing"),
          ("POST", "/api/workers/w@h/pool_shrink"), ("POST", "/api/tasks/x/revoke")]


def host_of(url: str) -> str:
    return url.split("//", 1)[1]


def request(monitor: Monitor, method: str, path: str, host: str, **kwargs: Any) -> Any:
    body = {} if method == "POST" else None
    return call(monitor.url + path, method, body, headers={"Host": host, **kwargs})


def test_a_page_on_another_name_cannot_reach_any_route(sqlite_app: Corekit) -> None:
    """DNS rebinding: evil.example resolves to 127.0.0.1, the browser sends
    Host: evil.example:PORT, and must get nothing, not even static files."""
    with Monitor(sqlite_app, port=0, inspect_interval=0.3, inspect_timeout=0.2) as monitor:
        port = monitor.url.rsplit(":", 1)[1]
        for method, path in ROUTES:
            for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}",
                         f"localhost.evil.example:{port}", f"[::2]:{port}", ""):
                refused = request(monitor, method, path, host)
                assert refused.status in (400, 421), (method, path, host, refused.status)
                assert "allowed-host" in refused.json["error"]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}",
                     "localhost."):
            assert request(monitor, "GET", "/api/workers", host).status == 200, host
            assert request(monitor, "GET", "/static/app.js", host).status == 200, host


def test_allowed_hosts_from_the_argument_and_the_setting(sqlite_app: Corekit) -> None:
    with Monitor(sqlite_app, port=0, allowed_hosts=["monitor.example.com"],
                 inspect_interval=0.3, inspect_timeout=0.2) as monitor:
        assert request(monitor, "GET", "/api/workers", "monitor.example.com:443").status == 200
        assert request(monitor, "GET", "/api/workers", "Monitor.Example.COM").status == 200
        assert request(monitor, "GET", "/api/workers", "other.example.com").status in (400, 421)
        assert request(monitor, "GET", "/api/workers", host_of(monitor.url)).status == 200
    sqlite_app.conf.monitor_allowed_hosts = ["from-settings.example"]
    with Monitor(sqlite_app, port=0, inspect_interval=0.3, inspect_timeout=0.2) as monitor:
        assert request(monitor, "GET", "/", "from-settings.example").status == 200
        assert request(monitor, "GET", "/", "monitor.example.com").status in (400, 421)


def test_a_wildcard_bind_takes_ip_literals_and_named_hosts_only(sqlite_app: Corekit) -> None:
    auth = Auth(token="t0k")
    bearer = {"Authorization": "Bearer t0k"}
    with Monitor(sqlite_app, address="0.0.0.0", port=0, auth=auth, allowed_hosts=["mon.lan"],
                 inspect_interval=0.3, inspect_timeout=0.2) as monitor:
        port = monitor.url.rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}/api/workers"
        for host in (f"192.0.2.7:{port}", f"127.0.0.1:{port}", "localhost", "mon.lan"):
            assert call(url, headers={"Host": host, **bearer}).status == 200, host
        # the token does not make a foreign name acceptable, nor does its absence matter
        assert call(url, headers={"Host": "evil.example", **bearer}).status in (400, 421)


def test_the_cli_takes_allowed_hosts(tmp_path: Any) -> None:
    with cli_monitor(f"sqlite://{tmp_path / 'b.sqlite3'}", "--allowed-host", "a.example",
                     "--allowed-host", "b.example") as (_, base):
        for host in ("a.example", "b.example:5555", host_of(base)):
            assert call(base + "/api/workers", headers={"Host": host}).status == 200, host
        assert call(base + "/api/workers", headers={"Host": "c.example"}).status in (400, 421)


def test_an_action_needs_a_json_body_from_the_same_origin(sqlite_app: Corekit) -> None:
    with Monitor(sqlite_app, port=0, inspect_interval=0.3, inspect_timeout=0.2) as monitor:
        url = monitor.url + "/api/tasks/123/revoke"
        own = monitor.url

        def post(raw: bytes | None = None, **headers: str) -> int:
            return call(url, "POST", raw=raw if raw is not None else b"", headers=headers).status

        # what a form or a sandboxed iframe of another site can send without a preflight
        assert post(**{"Origin": "null", "Content-Type": "text/plain"}) == 403
        assert post(**{"Content-Type": "text/plain"}) == 415
        assert post(b"", **{"Content-Type": "application/x-www-form-urlencoded"}) == 415
        assert post(b"terminate=true",
                    **{"Content-Type": "application/x-www-form-urlencoded"}) == 415
        assert post() == 415  # no Content-Type, no body
        assert post(b"{}", **{"Origin": "null", "Content-Type": "application/json"}) == 403
        assert post(b"{}", **{"Origin": "http://evil.example",
                              "Content-Type": "application/json"}) == 403
        assert post(b"{}", **{"Origin": own.replace("127.0.0.1", "localhost"),
                              "Content-Type": "application/json"}) == 403
        for site in ("cross-site", "same-site"):
            assert post(b"{}", **{"Sec-Fetch-Site": site, "Content-Type": "application/json",
                                  "Origin": own}) == 403
        # the monitor's own page, and a client with no Origin (curl)
        assert post(b"{}", **{"Origin": own, "Sec-Fetch-Site": "same-origin",
                              "Content-Type": "application/json"}) == 202
        assert post(b"", **{"Content-Type": "application/json; charset=utf-8"}) == 202
        assert post(b'{"terminate": false}', **{"Content-Type": "application/json"}) == 202
