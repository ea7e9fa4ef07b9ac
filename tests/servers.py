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
import tempfile
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


RABBITMQ_ADVANCED = """[{rabbit, [{consumer_timeout, undefined}]}]."""
VHOSTS_PER_BATCH = 60


@dataclass
class RabbitServer:
    """A RabbitMQ node of the suite's own; each test takes a fresh vhost."""

    port: int
    nodename: str
    env: dict[str, str]
    directory: Path
    tls_port: int
    ca_path: Path
    process: subprocess.Popen[bytes] | None = None
    _vhosts_made: int = 0
    _vhosts_used: int = 0

    def url(self, vhost: str = "/") -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{vhost.replace('/', '%2F')}"

    def fresh_tls_url(self) -> str:
        """``amqps://`` on a vhost of its own, the server's certificate verified."""
        vhost = self.fresh_url().rpartition("/")[2]
        return (f"amqps://guest:guest@127.0.0.1:{self.tls_port}/{vhost}"
                f"?ssl_ca_certs={self.ca_path}")

    def fresh_url(self) -> str:
        """A URL on a vhost no other test has used."""
        if self._vhosts_used == self._vhosts_made:
            self._make_vhosts(self._vhosts_made + 1, self._vhosts_made + VHOSTS_PER_BATCH)
        self._vhosts_used += 1
        return self.url(f"t{self._vhosts_used}")

    def _make_vhosts(self, first: int, last: int) -> None:
        # One rabbitmqctl call for a batch: each call boots an Erlang VM (~1 s).
        self.ctl("eval", "[begin V = list_to_binary(\"t\" ++ integer_to_list(N)), "
                 "rabbit_vhost:add(V, <<\"corekit\">>), "
                 "rabbit_auth_backend_internal:set_permissions(<<\"guest\">>, V, <<\".*\">>, "
                 "<<\".*\">>, <<\".*\">>, <<\"corekit\">>) end "
                 f"|| N <- lists:seq({first}, {last})], ok.")
        self._vhosts_made = last

    def ctl(self, *args: str) -> str:
        done = subprocess.run(["rabbitmqctl", "-n", self.nodename, *args], env=self.env,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {args[0]} failed: {done.stderr.strip()[-500:]}")
        return done.stdout

    def start(self) -> None:
        log = open(self.directory / "server.log", "ab")
        self.process = subprocess.Popen(["rabbitmq-server"], env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, cwd=self.directory)
        deadline = time.monotonic() + 90
        while not _amqp_answers(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.directory / "server.log").read_text(errors="replace")[-800:]
                raise RuntimeError(f"rabbitmq-server did not start on {self.port}: {tail}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the node (its durable queues and persistent messages stay)."""
        if self.process is not None and self.process.poll() is None:
            try:
                self.ctl("stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _amqp_answers(port: int) -> bool:
    """True once the broker completes an AMQP handshake (the port opens earlier)."""
    try:
        import amqp

        connection = amqp.Connection(f"127.0.0.1:{port}", connect_timeout=1)
        connection.connect()
        connection.close()
        return True
    except Exception:
        return False


def start_rabbitmq() -> Iterator[RabbitServer]:
    require_binary("rabbitmq-server", "rabbitmq-server")
    port, dist_port = free_port(), free_port()
    # Not under pytest's tmp dir: its parents are private to root, and the
    # node runs as the rabbitmq user.
    directory = Path(tempfile.mkdtemp(prefix="corekit-rabbitmq-"))
    directory.chmod(0o755)
    openssl = shutil.which("openssl")
    if openssl is None:
        unavailable("openssl is not installed to make the test certificates: "
                    "`apt-get install openssl` (scripts/test.sh does this)")
    ca, cert, key = make_certificates(openssl, directory)
    tls_port = free_port()
    (directory / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n"
        "log.console = false\n"
        f"listeners.ssl.default = 127.0.0.1:{tls_port}\nssl_options.cacertfile = {ca}\n"
        f"ssl_options.certfile = {cert}\nssl_options.keyfile = {key}\n"
        "ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n")
    (directory / "advanced.config").write_text(RABBITMQ_ADVANCED)
    nodename = f"corekit{port}@localhost"
    env = {**os.environ, "HOME": str(directory), "RABBITMQ_NODENAME": nodename,
           "RABBITMQ_NODE_PORT": str(port), "RABBITMQ_DIST_PORT": str(dist_port),
           "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
           "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
           "RABBITMQ_LOG_BASE": str(directory / "log"),
           "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
           "RABBITMQ_FEATURE_FLAGS_FILE": str(directory / "feature_flags"),
           "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
           "RABBITMQ_ADVANCED_CONFIG_FILE": str(directory / "advanced.config"),
           "RABBITMQ_PID_FILE": str(directory / "rabbitmq.pid")}
    # The Debian wrapper runs the node as the rabbitmq user: it must own the files.
    subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(directory)], check=False)
    server = RabbitServer(port, nodename, env, directory, tls_port, ca)
    server.start()
    try:
        server._make_vhosts(1, VHOSTS_PER_BATCH)
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
