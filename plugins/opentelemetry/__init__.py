"""The ``opentelemetry`` plugin: a span per task published and per task run,
with the names, attributes and trace-context headers of OpenTelemetry's
Celery instrumentation, so one trace crosses Celery and corekit processes
(`corekit.plugins.opentelemetry.tracing`).

Active where the OpenTelemetry API is importable (``pip install
'corekit[opentelemetry]'``); otherwise it registers nothing, and
``COREKIT_STATUS`` says why (``corekit plugins`` shows it).  Which tracer
provider and exporter the spans go to is the program's own OpenTelemetry
setup.  This module only looks for the package: OpenTelemetry is imported
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
#: signal -> receiver in `tracing`
RECEIVERS = ("before_task_publish", "after_task_publish", "task_prerun", "task_failure",
             "task_retry", "task_postrun")


def _importable() -> bool:
    try:
        return find_spec("opentelemetry.trace") is not None
    except (ImportError, ValueError):  # no opentelemetry namespace, or a broken one
        return False


ACTIVE = _importable()
COREKIT_STATUS = ("active: a span per task published and per task run" if ACTIVE else
                  "inactive: the OpenTelemetry API is not installed "
                  "(pip install 'corekit[opentelemetry]')")

if ACTIVE:
    @hookimpl
    def corekit_register_signal_receivers() -> dict[str, str]:
        return {name: f"{TRACING}:{name}" for name in RECEIVERS}

    @hookimpl
    def corekit_publish_failed(app: Corekit, messages: Sequence[Message],
                               exc: BaseException) -> Any:
        from corekit.plugins.opentelemetry.tracing import publish_failed

        publish_failed(messages, exc)
