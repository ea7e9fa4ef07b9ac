"""Who may use the web monitor: HTTP basic auth and/or a bearer token.

With neither set the monitor is open, and it may only listen on a loopback
address (`check_bind`): its actions revoke tasks and shut workers down.
With either set, every request needs one of them.  A browser can carry the
token as a ``token`` cookie, which ``/?token=TOKEN`` sets (`Auth.cookie_for`).

Each credential comes from the command line (visible in ``ps``), a file or
an environment variable (`credential`).
"""
from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import os
import stat
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Callable, Mapping

#: The cookie the browser UI keeps the token in.
TOKEN_COOKIE = "token"


class AuthConfigError(ValueError):
    """A malformed ``--basic-auth`` or an unsafe address without auth."""


def parse_basic_auth(spec: str, source: str = "--basic-auth") -> dict[str, str]:
    """``user:pass[,user2:pass2]`` (commas or lines) -> ``{user: pass}``."""
    users: dict[str, str] = {}
    for entry in spec.replace("\n", ",").split(","):
        if not entry.strip():
            continue
        user, sep, password = entry.strip().partition(":")
        if not sep or not user or not password:
            raise AuthConfigError(f"{source} expects user:password[,user2:password2], "
                                  f"got {entry.strip()!r}")
        users[user] = password
    return users


def credential(option: str, given: str | None, path: str | None, env: str,
               environ: Mapping[str, str], warn: Callable[[str], None]) -> str | None:
    """A secret from *option* on the command line, else the file at *path*
    (``OPTION-file``), else the environment variable *env*; None if none.
    A file readable by other users is used with a warning."""
    if given is not None and path is not None:
        raise AuthConfigError(f"give {option} or {option}-file, not both")
    if given is not None:
        return given or None
    if path is not None:
        return read_secret(f"{option}-file", path, warn)
    return environ.get(env) or None


def read_secret(option: str, path: str, warn: Callable[[str], None]) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            mode = os.fstat(file.fileno()).st_mode
            text = file.read().strip()
    except OSError as exc:
        raise AuthConfigError(f"cannot read {option} {path}: {exc.strerror or exc}") from None
    if not text:
        raise AuthConfigError(f"{option} {path} is empty")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warn(f"Warning: {option} {path} is readable by other users (chmod 600 {path})")
    return text


@dataclass(frozen=True)
class Auth:
    """The credentials the monitor accepts (none: open)."""

    users: Mapping[str, str] = field(default_factory=dict)
    token: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.users) or bool(self.token)

    def allows(self, authorization: str | None, cookie: str | None = None,
               query_token: str | None = None) -> bool:
        """Whether a request with this ``Authorization`` header, ``Cookie``
        header and ``?token=`` may pass."""
        if not self.enabled:
            return True
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() == "basic" and self.users:
            return self._basic_ok(value.strip())
        if self.token is None:
            return False
        if scheme.lower() == "bearer":
            return _same(value.strip(), self.token)
        if query_token is not None:
            return _same(query_token, self.token)
        return _same(_cookie(cookie, TOKEN_COOKIE) or "", self.token)

    def _basic_ok(self, encoded: str) -> bool:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        expected = self.users.get(user)
        return expected is not None and _same(password, expected)

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` header of a 401: Basic when users are
        set, so that a browser asks for them."""
        return 'Basic realm="corekit monitor"' if self.users else 'Bearer realm="corekit monitor"'

    def cookie_for(self, token: str) -> str:
        """The ``Set-Cookie`` value that keeps *token* for the browser UI."""
        return f"{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"


def check_bind(address: str, auth: Auth) -> None:
    """Refuse to listen beyond loopback without auth."""
    if auth.enabled or is_loopback(address):
        return
    raise AuthConfigError(
        f"refusing to listen on {address} without --basic-auth or --auth-token: anyone "
        f"who reaches it could revoke tasks and shut workers down (bind 127.0.0.1, or "
        f"set auth)")


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _cookie(header: str | None, name: str) -> str | None:
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:  # a malformed Cookie header is just no cookie
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None
