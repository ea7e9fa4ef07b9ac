"""The pid file of a service command (``--pidfile``): created atomically,
refused while a live process holds it, taken over when stale."""
from __future__ import annotations

import logging
import os

from corekit.exceptions import CorekitError

logger = logging.getLogger("corekit.daemon")

__all__ = ["Pidfile", "PidfileError", "process_alive"]

#: A pid file is a few bytes; more is not a pid file.
MAX_SIZE = 64


class PidfileError(CorekitError):
    """The pid file is held by a running process, or cannot be written."""


def process_alive(pid: int) -> bool:
    """Whether a process *pid* runs (another user's counts; a zombie, dead
    but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):  # no /proc here: kill(0) said it exists
        return True


class Pidfile:
    """``path`` holds this process's pid and a newline while it runs."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.owned = False

    def read_pid(self) -> int | None:
        """The pid in the file; None when it is missing or holds no pid."""
        try:
            with open(self.path, "rb") as f:
                text = f.read(MAX_SIZE + 1)
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise PidfileError(f"pid file {self.path} is a directory") from None
        try:
            pid = int(text.decode("ascii").strip()) if len(text) <= MAX_SIZE else 0
        except (UnicodeDecodeError, ValueError):
            return None
        return pid if pid > 0 else None

    def acquire(self) -> None:
        """Write our pid with O_CREAT|O_EXCL.  A file naming a live process
        (not us) is refused; one naming a dead process, or garbage, is
        stale: removed, with a warning.  A file that already names us (a
        worker restarted in place by exec) is kept."""
        for _ in range(5):  # another process may take over the same stale file
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._holder_is_us():
                    return
                continue
            except OSError as exc:
                raise PidfileError(f"cannot create pid file {self.path}: "
                                   f"{exc.strerror or exc}") from None
            try:
                os.write(fd, f"{os.getpid()}\n".encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            self.owned = True
            return
        raise PidfileError(f"cannot create pid file {self.path}: another process keeps "
                           "creating it")

    def _holder_is_us(self) -> bool:
        """True when the file names this process; raise when it names a
        live other one; remove it (stale) otherwise."""
        pid = self.read_pid()
        if pid == os.getpid():
            self.owned = True
            return True
        if pid is not None and process_alive(pid):
            raise PidfileError(f"pid file {self.path} is held by running process {pid}")
        why = f"process {pid} is not running" if pid else "it does not hold a pid"
        logger.warning("pid file %s is stale (%s): removing it", self.path, why)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise PidfileError(f"cannot remove stale pid file {self.path}: "
                               f"{exc.strerror or exc}") from None
        return False

    def release(self) -> None:
        """Remove the file if it still names us."""
        if not self.owned:
            return
        self.owned = False
        try:
            if self.read_pid() == os.getpid():
                os.unlink(self.path)
        except (OSError, PidfileError) as exc:
            logger.warning("cannot remove pid file %s: %s", self.path, exc)
