"""Which requests may reach the web monitor, and which may act.

- The ``Host`` header names the monitor (`AllowedHosts`): a page on another
  name that resolves to the monitor's address (DNS rebinding) is refused on
  every route, static files too.
- An action (a POST) sends ``Content-Type: application/json`` whatever its
  body, and comes from no page (curl), or from the monitor's own page: an
  ``Origin`` that is not the monitor's, ``Origin: null`` and a cross-site
  ``Sec-Fetch-Site`` are refused (`check_action`).
"""
from __future__ import annotations

import ipaddress
from typing import Iterable, Mapping
from urllib.parse import urlsplit

from corekit.monitor.api import ApiError

#: Binds that listen on every address: any IP literal names the monitor.
WILDCARDS = ("", "0.0.0.0", "::")


def host_name(host: str) -> str:
    """``Host: [::1]:5555`` -> ``::1``; ``Localhost.:80`` -> ``localhost``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else ""
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        host = name
    return host.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_loopback(name: str) -> bool:
    try:
        return name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class AllowedHosts:
    """The names the monitor answers to: its bind address, ``localhost``,
    127.0.0.1 and ::1 on a loopback bind, any IP literal on a wildcard bind
    (an address cannot be rebound to another site), and *extra* names
    (``--allowed-host``, the ``monitor_allowed_hosts`` setting); ``*`` in
    *extra* accepts any name."""

    def __init__(self, address: str, extra: Iterable[str] = ()) -> None:
        bind = host_name(address)
        self.names = {"localhost", bind} | {host_name(name) for name in extra}
        self.any_name = "*" in self.names
        self.any_ip = bind in WILDCARDS
        if _is_loopback(bind):
            self.names |= {"127.0.0.1", "::1"}

    def allows(self, host: str | None) -> bool:
        name = host_name(host or "")
        if not name:
            return False
        return (self.any_name or name in self.names
                or (self.any_ip and _is_ip(name)))

    def check(self, host: str | None) -> None:
        if not self.allows(host):
            raise ApiError(400, f"the monitor does not answer to the host {host!r}: add it "
                                f"with --allowed-host (or the monitor_allowed_hosts setting)")


def check_action(headers: Mapping[str, str]) -> None:
    """Refuse an action that a page of another site can make a browser send
    (ApiError 403 or 415)."""
    site = headers.get("Sec-Fetch-Site")
    if site in ("cross-site", "same-site"):
        raise ApiError(403, "cross-site requests may not act on the cluster")
    origin = headers.get("Origin")
    if origin is not None:
        if origin.strip().lower() == "null":
            raise ApiError(403, "requests from an opaque origin (Origin: null) may not act on "
                                "the cluster")
        if urlsplit(origin).netloc.lower() != (headers.get("Host") or "").lower():
            raise ApiError(403, f"requests from {origin} may not act on the cluster")
    kind = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise ApiError(415, "send the body as application/json (an empty body too)")
