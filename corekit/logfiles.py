"""Log files of the service commands: ``%n``-style names, reopening on
SIGHUP (logrotate), the JSON format, and a dump of every thread's stack.

`corekit.log.setup_logging` puts these together; a pool that forks
children calls `set_process_index` in each child, which moves a log file
whose name has ``%i``/``%I`` to the child's own file.
"""
from __future__ import annotations

import json
import logging
import os
import re
import socket
import sys
import threading
import time
import traceback
from typing import Any

from corekit.cli.daemon_options import LOG_FORMATS
from corekit.request import current_request

__all__ = ["node_format", "set_process_index", "process_index", "reopen_log_files",
           "LogFile", "JsonFormatter", "dump_stacks", "LOG_FORMATS"]

#: ``--log-format``: the worker's text lines, or one JSON object per line
TEXT_FORMAT, JSON_FORMAT = LOG_FORMATS

logger = logging.getLogger("corekit.daemon")

_process_index = 0
#: bumped to make every `LogFile` reopen its file at its next record
_generation = 0
#: the node name records carry in the JSON format (``worker``)
_nodename: str | None = None

_PERCENT = re.compile(r"%(.)")


def node_format(template: str, nodename: str, index: int | None = None) -> str:
    """Expand Celery's ``%`` names in *template*: ``%n`` the short node name
    (before ``@``), ``%N`` the full node name, ``%h`` the host (after ``@``),
    ``%d`` its domain, ``%i`` the pool process index (0 in the main process),
    ``%I`` ``-index`` (empty in the main process), ``%%`` a percent sign.
    *index* defaults to this process's (`set_process_index`)."""
    index = _process_index if index is None else index
    name, sep, host = nodename.partition("@")
    if not sep:
        name, host = nodename, socket.gethostname()
    values = {"n": name, "N": nodename, "h": host, "d": host.partition(".")[2],
              "i": str(index), "I": f"-{index}" if index else "", "%": "%"}
    return _PERCENT.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def process_index() -> int:
    return _process_index


def set_process_index(index: int) -> None:
    """This process is pool process *index* (1, 2...): log files named with
    ``%i``/``%I`` move to its own file at the next record."""
    global _process_index
    _process_index = index
    reopen_log_files()


def reopen_log_files() -> None:
    """Make every log file reopen its path at its next record (what SIGHUP
    does after logrotate moved the file).  Safe in a signal handler: it
    only bumps a counter."""
    global _generation
    _generation += 1


def set_nodename(nodename: str | None) -> None:
    global _nodename
    _nodename = nodename


class LogFile(logging.StreamHandler):  # type: ignore[type-arg]
    """Appends to the file *template* names (expanded with `node_format`);
    reopens it after `reopen_log_files`."""

    def __init__(self, template: str, nodename: str) -> None:
        self.template, self.nodename = template, nodename
        self.path = os.path.abspath(node_format(template, nodename))
        super().__init__(self._open())
        self._generation = _generation

    def _open(self) -> Any:
        return open(self.path, "a", encoding="utf-8")

    def emit(self, record: logging.LogRecord) -> None:
        if self._generation != _generation:  # handle() holds our lock
            self._reopen()
        super().emit(record)

    def _reopen(self) -> None:
        self._generation = _generation
        path = os.path.abspath(node_format(self.template, self.nodename))
        try:
            stream = open(path, "a", encoding="utf-8")
        except OSError as exc:  # keep writing where we were, say why once
            sys.stderr.write(f"corekit: cannot reopen log file {path}: {exc}\n")
            return
        old, self.stream, self.path = self.stream, stream, path
        try:
            old.close()
        except OSError:
            pass

    def close(self) -> None:
        self.acquire()
        try:
            try:
                self.flush()
                self.stream.close()
            except (OSError, ValueError):
                pass
        finally:
            self.release()
        super().close()


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (ISO 8601, UTC), ``level``,
    ``logger``, ``process``, ``pid``, ``message``, ``task_id``,
    ``task_name``, ``worker`` (null outside a task / without a node
    name), and ``exception`` when the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        task_id = getattr(record, "task_id", None)
        task_name = getattr(record, "task_name", None)
        if task_id is None:
            request = current_request()
            if request is not None and request.id:
                task_id, task_name = request.id, request.task
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        data: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z", "level": record.levelname,
            "logger": record.name, "process": record.processName, "pid": record.process,
            "message": record.getMessage(), "task_id": task_id, "task_name": task_name,
            "worker": _nodename}
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=repr, ensure_ascii=False)


def dump_stacks(signum: int | None = None, frame: Any = None) -> None:
    """Log the stack of every thread of this process at WARNING (SIGUSR1)."""
    names = {t.ident: t.name for t in threading.enumerate()}
    stacks = [f"Thread {names.get(ident, '?')} ({ident}):\n"
              + "".join(traceback.format_stack(top))
              for ident, top in sys._current_frames().items()]
    logger.warning("stacks of the %d thread(s) of process %d:\n%s", len(stacks),
                   os.getpid(), "\n".join(stacks))
