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
from typing import Iterator

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = (f"{name} is not installed: `apt-get install {package}` "
                   f"(scripts/test.sh does this)")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class RedisServer:
    port: int
    socket_path: str
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def socket_url(self) -> str:
        return f"redis+socket://{self.socket_path}"

    def flush(self) -> None:
        import redis

        redis.Redis(port=self.port).flushall()


def start_redis(directory: Path) -> Iterator[RedisServer]:
    binary = require_binary("redis-server", "redis-server")
    port = free_port()
    sock = str(directory / "redis.sock")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                             "--unixsocket", sock, "--unixsocketperm", "700",
                             "--dir", str(directory), "--save", "", "--appendonly", "no",
                             "--protected-mode", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}") from None
            time.sleep(0.02)
    try:
        yield RedisServer(port, sock, proc)
    finally:
        proc.terminate()
        proc.wait(10)
