"""Real servers for the suite: started once per test session (per xdist
worker) on loopback, with their own port and data directory.

A missing server binary skips its tests with the reason on a developer's
machine and fails them under ``CI=true``: CI must never pass by skipping.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NoReturn
from urllib.parse import quote

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unavailable(message: str) -> NoReturn:
    """Skip the test with *message*; fail it under ``CI=true``."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def require_binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed: `apt-get install {package}` "
                    f"(scripts/test.sh does this)")
    return path


def make_certificates(openssl: str, directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate it signed for IP 127.0.0.1,
    written to *directory*: ``(ca.pem, server.pem, server.key)``."""
    ca_key, ca, key, csr, cert, ext = (directory / name for name in (
        "ca.key", "ca.pem", "server.key", "server.csr", "server.pem", "server.ext"))
    ext.write_text("subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\n"
                   "extendedKeyUsage = serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for args in (["req", "-x509", *ec, "-days", "2", "-subj", "/CN=corekit test CA",
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                  "-keyout", ca_key, "-out", ca],
                 ["req", *ec, "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", csr],
                 ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                  "-days", "2", "-extfile", ext, "-out", cert]):
        done = subprocess.run([openssl, *map(str, args)], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")
    return ca, cert, key


@dataclass
class RedisServer:
    port: int
    socket_path: str
    process: subprocess.Popen[bytes]
    #: The TLS listener and the CA that signed its certificate; None when
    #: this redis-server could not listen with TLS, and `tls_problem` says why.
    tls_port: int | None = None
    ca_path: Path | None = None
    tls_problem: str = ""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def tls_url(self) -> str:
        """The same server over TLS.  The client verifies the certificate
        against the session's CA and checks that it names 127.0.0.1."""
        if self.tls_port is None or self.ca_path is None:
            unavailable(f"redis-server has no TLS listener: {self.tls_problem}")
        return (f"rediss://127.0.0.1:{self.tls_port}/0?ssl_cert_reqs=required"
                f"&ssl_ca_certs={quote(str(self.ca_path))}")

    @property
    def socket_url(self) -> str:
        return f"redis+socket://{self.socket_path}"

    def flush(self) -> None:
        import redis

        redis.Redis(port=self.port).flushall()


def start_redis(directory: Path) -> Iterator[RedisServer]:
    """One redis-server on a TCP port, a unix socket and, when the build and
    ``openssl`` allow it, a TLS port; without TLS it starts anyway and only
    the ``rediss://`` tests skip (or fail under CI)."""
    binary = require_binary("redis-server", "redis-server")
    try:
        server = _launch_redis(binary, directory, tls=True)
    except RuntimeError as exc:
        server = _launch_redis(binary, directory, tls=False)
        server.tls_problem = str(exc)
    try:
        yield server
    finally:
        server.process.terminate()
        server.process.wait(10)


def _launch_redis(binary: str, directory: Path, tls: bool) -> RedisServer:
    port, sock = free_port(), str(directory / "redis.sock")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1",
            "--unixsocket", sock, "--unixsocketperm", "700",
            "--dir", str(directory), "--save", "", "--appendonly", "no",
            "--protected-mode", "no"]
    tls_port = ca = None
    if tls:
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RuntimeError("openssl is not installed to make the test certificates: "
                               "`apt-get install openssl`")
        ca, cert, key = make_certificates(openssl, directory)
        tls_port = free_port()
        args += ["--tls-port", str(tls_port), "--tls-cert-file", str(cert),
                 "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
                 "--tls-auth-clients", "no"]
    log = directory / "redis.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    ports = [port] if tls_port is None else [port, tls_port]
    try:
        _wait_listening(proc, ports)
    except RuntimeError as exc:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{exc}; its log ends: {' | '.join(tail)}") from None
    return RedisServer(port, sock, proc, tls_port, ca)


def _wait_listening(proc: subprocess.Popen[bytes], ports: list[int]) -> None:
    deadline = time.monotonic() + 20
    for port in ports:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.02)
