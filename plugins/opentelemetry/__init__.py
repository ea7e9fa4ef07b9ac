"""The ``opentelemetry`` plugin: a span per task published and per task run,
with the names, attributes and trace-context headers of OpenTelemetry's
Celery instrumentation, so one trace crosses Celery and corekit processes
(`corekit.plugins.opentelemetry.tracing`).

Active where the OpenTelemetry API is importable (``pip install
'corekit[opentelemetry]'``); otherwise it registers nothing, and
``COREKIT_STATUS`` says why (``corekit plugins`` shows it).  Which tracer
provider and exporter the spans go to is the program's own OpenTelemetry
setup, which must be made before the process sends or runs its first
task (or, in a prefork child, in a ``worker_process_init`` receiver):
a process with no SDK then connects no span receiver and pays nothing per
task.  This module only looks for the package: OpenTelemetry is imported
when the receivers are connected (the first task sent or run).
"""
from __future__ import annotations

from importlib.util import find_spec
from typing import TYPE_CHECKING, Any, Sequence

from corekit.hookspecs import hookimpl

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.messages import Message

TRACING = "corekit.plugins.opentelemetry.tracing"
def _importable() -> bool:
    try:
        return find_spec("opentelemetry.trace") is not None
    except (ImportError, ValueError):  # no opentelemetry namespace, or a broken one
        return False


ACTIVE = _importable()
COREKIT_STATUS = ("active: a span per task published and per task run, in a process "
                  "whose OpenTelemetry SDK is set up" if ACTIVE else
                  "inactive: the OpenTelemetry API is not installed "
                  "(pip install 'corekit[opentelemetry]')")

if ACTIVE:
    @hookimpl
    def corekit_register_signal_receivers() -> dict[str, Any]:
        from corekit.plugins.opentelemetry.tracing import receivers

        return receivers()

    @hookimpl
    def corekit_publish_failed(app: Corekit, messages: Sequence[Message],
                               exc: BaseException) -> Any:
        from corekit.plugins.opentelemetry.tracing import publish_failed

        publish_failed(messages, exc)
