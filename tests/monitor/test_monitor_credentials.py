"""``corekit monitor``'s credentials from the environment or a file, so
that they need not be on the command line, where ``ps`` shows them."""
from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor_helpers import call, cli_monitor

pytestmark = pytest.mark.timeout(120)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def broker(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'b.sqlite3'}"


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def refused(tmp_path: Path, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corekit", "-b", broker(tmp_path), "monitor",
                           "--port", "0", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_a_token_and_users_from_the_environment(tmp_path: Path) -> None:
    env = {"COREKIT_MONITOR_AUTH_TOKEN": "env-t0ken",
           "COREKIT_MONITOR_BASIC_AUTH": "ann:pw1,bob:pw2"}
    with cli_monitor(broker(tmp_path), env=env) as (proc, base):
        assert "env-t0ken" not in cmdline(proc.pid) and "pw1" not in cmdline(proc.pid)
        assert call(base + "/api/workers").status == 401
        assert call(base + "/api/workers", headers={"Authorization": "Bearer env-t0ken"}
                    ).status == 200
        assert call(base + "/api/workers", headers=basic("bob", "pw2")).status == 200
        assert call(base + "/api/workers", headers=basic("bob", "pw1")).status == 401
    # the environment's auth is auth: another address is allowed with it
    with cli_monitor(broker(tmp_path), "--address", "0.0.0.0",
                     env={"COREKIT_MONITOR_AUTH_TOKEN": "x"}) as (_, base):
        port = base.rsplit(":", 1)[1]
        assert call(f"http://127.0.0.1:{port}/api/workers").status == 401


def test_a_token_and_users_from_files(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-t0ken\n")
    token_file.chmod(0o600)
    users_file = tmp_path / "users"
    users_file.write_text("ann:from-file\n")
    users_file.chmod(0o600)
    with cli_monitor(broker(tmp_path), "--auth-token-file", str(token_file),
                     "--basic-auth-file", str(users_file),
                     env={"COREKIT_MONITOR_AUTH_TOKEN": "ignored"}) as (proc, base):
        assert "file-t0ken" not in cmdline(proc.pid)
        assert call(base + "/api/workers", headers={"Authorization": "Bearer file-t0ken"}
                    ).status == 200
        assert call(base + "/api/workers", headers={"Authorization": "Bearer ignored"}
                    ).status == 401
        assert call(base + "/api/workers", headers=basic("ann", "from-file")).status == 200


def test_a_missing_empty_or_readable_by_others_file(tmp_path: Path) -> None:
    missing = refused(tmp_path, "--auth-token-file", str(tmp_path / "nope"))
    assert missing.returncode == 2, missing.stderr
    assert "--auth-token-file" in missing.stderr and "No such file" in missing.stderr
    empty = tmp_path / "empty"
    empty.write_text("\n")
    empty.chmod(0o600)
    for option in ("--auth-token-file", "--basic-auth-file"):
        result = refused(tmp_path, option, str(empty))
        assert result.returncode == 2 and f"{option} {empty} is empty" in result.stderr
    both = refused(tmp_path, "--auth-token", "a", "--auth-token-file", str(empty))
    assert both.returncode == 2 and "not both" in both.stderr
    bad_users = tmp_path / "bad"
    bad_users.write_text("no-colon\n")
    bad_users.chmod(0o600)
    result = refused(tmp_path, "--basic-auth-file", str(bad_users))
    assert result.returncode == 2 and "user:password" in result.stderr
    result = refused(tmp_path, env={"COREKIT_MONITOR_BASIC_AUTH": "no-colon"})
    assert result.returncode == 2 and "COREKIT_MONITOR_BASIC_AUTH" in result.stderr
    # readable by others: it still starts, with a warning
    shared = tmp_path / "shared"
    shared.write_text("s3cret")
    shared.chmod(0o644)
    proc = subprocess.Popen([sys.executable, "-m", "corekit", "-b", broker(tmp_path), "monitor",
                             "--port", "0", "--auth-token-file", str(shared)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("corekit monitor")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "readable by other users" in err and "chmod 600" in err


def test_the_help_says_the_command_line_is_visible() -> None:
    help_text = subprocess.run([sys.executable, "-m", "corekit", "monitor", "--help"],
                               capture_output=True, text=True, timeout=60).stdout
    flat = " ".join(help_text.split())
    assert "visible in ps" in flat
    for name in ("--basic-auth-file", "--auth-token-file", "COREKIT_MONITOR_BASIC_AUTH",
                 "COREKIT_MONITOR_AUTH_TOKEN", "--allowed-host", "--request-timeout",
                 "--max-connections"):
        assert name in flat, name
