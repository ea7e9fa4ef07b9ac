"""Logging: the worker's format, task loggers that name the running task."""
from __future__ import annotations

import logging
import sys

from corekit.request import current_request

WORKER_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
TASK_FORMAT = ("[%(asctime)s: %(levelname)s/%(processName)s] "
               "%(task_name)s[%(task_id)s]: %(message)s")

task_logger = logging.getLogger("corekit.task")


def get_task_logger(name: str) -> logging.Logger:
    """A logger for task modules: its records carry the running task's name
    and id, and it propagates through ``corekit.task``."""
    logger = logging.getLogger(name)
    if name != "corekit.task":
        logger.parent = task_logger
    return logger


class TaskFormatter(logging.Formatter):
    """Uses the task format for records logged while a task runs."""

    def __init__(self) -> None:
        super().__init__(WORKER_FORMAT)
        self.task_formatter = logging.Formatter(TASK_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        request = current_request()
        if request is not None and request.id:
            record.task_name, record.task_id = request.task, request.id
            return self.task_formatter.format(record)
        return super().format(record)


def setup_logging(level: str | int = "WARNING", stream: object = None, *,
                  logfile: str | None = None, fmt: str = "text",
                  nodename: str | None = None) -> None:
    """Configure the root logger once for a worker or CLI process: records
    go to *logfile* (a `corekit.logfiles.node_format` template, reopened
    after SIGHUP) or *stream*, as *fmt* (``text`` or ``json``); *nodename*
    is the ``worker`` field of JSON records."""
    from corekit.logfiles import JSON_FORMAT, LOG_FORMATS, JsonFormatter, LogFile, set_nodename

    if fmt not in LOG_FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (use {' or '.join(LOG_FORMATS)})")
    if isinstance(level, str):
        name = level.upper()
        if name not in logging.getLevelNamesMapping():
            raise ValueError(f"unknown log level {level!r} "
                             f"(use debug, info, warning, error or critical)")
        level = logging.getLevelNamesMapping()[name]
    set_nodename(nodename)
    handler: logging.Handler
    if logfile:
        handler = LogFile(logfile, nodename or "")
    else:
        handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(JsonFormatter() if fmt == JSON_FORMAT else TaskFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_corekit", False):
            root.removeHandler(old)
            if isinstance(old, LogFile):
                old.close()
    handler._corekit = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


class LoggingProxy:
    """A file-like object that sends what is written to it to a logger, one
    record per line: what tasks print ends up in the worker's log."""

    encoding = "utf-8"

    def __init__(self, logger: logging.Logger, level: int) -> None:
        self.logger = logger
        self.level = level
        self._partial = ""
        self._busy = False  # a handler that writes back here must not recurse

    def write(self, data: str) -> int:
        if self._busy:
            return len(data)
        self._partial += data
        *lines, self._partial = self._partial.split("\n")
        self._busy = True
        try:
            for line in lines:
                if line.strip():
                    self.logger.log(self.level, line.rstrip())
        finally:
            self._busy = False
        return len(data)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._partial.strip():
            self.write("\n")

    def isatty(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return False


def redirect_stdouts(level: str | int = "WARNING") -> None:
    """Send ``sys.stdout`` and ``sys.stderr`` to the ``corekit.task.stdout``
    logger (the worker's own handler keeps the real stream it was made with)."""
    if isinstance(level, str):
        level = logging.getLevelNamesMapping()[level.upper()]
    logger = logging.getLogger("corekit.task.stdout")
    sys.stdout = LoggingProxy(logger, level)  # type: ignore[assignment]
    sys.stderr = LoggingProxy(logger, level)  # type: ignore[assignment]
