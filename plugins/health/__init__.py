"""Health checks for container probes: ``corekit worker --health-file PATH``
(a file touched while the worker consumes) and ``--health-port PORT`` (HTTP
``/healthz``, ``/readyz``, ``/livez``).

What "alive" means is in `corekit.plugins.health.check`; the HTTP server
(Tornado, the monitor extra's) is imported only when a port is set.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from corekit.hookspecs import hookimpl

if TYPE_CHECKING:
    from corekit.bootsteps import Step
    from corekit.cli.options import CommandOption
    from corekit.settings import Setting


@hookimpl
def corekit_register_settings() -> list[Setting]:
    from corekit.plugins.health.settings import SETTINGS

    return list(SETTINGS)


@hookimpl
def corekit_register_command_options() -> dict[str, list[CommandOption]]:
    from corekit.cli.options import CommandOption
    from corekit.plugins.health.settings import port

    return {"worker": [
        CommandOption("--health-file", "worker_health_file",
                      "touch PATH every few seconds while this worker consumes (a probe "
                      "checks its age)", {"metavar": "PATH"}),
        CommandOption("--health-port", "worker_health_port",
                      "serve /healthz, /readyz and /livez over HTTP on PORT (needs tornado: "
                      "pip install 'corekit[health]')", {"metavar": "PORT", "type": port}),
        CommandOption("--health-host", "worker_health_host",
                      "address of --health-port (default: 127.0.0.1; 0.0.0.0 in a container)",
                      {"metavar": "HOST"}),
    ]}


@hookimpl
def corekit_register_bootsteps() -> list[type[Step]]:
    from corekit.plugins.health.step import HealthStep

    return [HealthStep]
