"""The health checks' settings (declared through ``corekit_register_settings``)."""
from __future__ import annotations

from corekit.settings import Setting

SETTINGS = (
    Setting("worker_health_file", None, str,
            "A file the worker touches every worker_health_interval seconds while it consumes."),
    Setting("worker_health_port", None, int,
            "Port of the HTTP health checks (/healthz, /readyz, /livez); 0 picks a free one."),
    Setting("worker_health_host", "127.0.0.1", str,
            "Address the HTTP health checks listen on (0.0.0.0 for a container's probes)."),
    Setting("worker_health_interval", 5.0, float,
            "Seconds between touches of worker_health_file while the worker consumes."),
    Setting("worker_health_stall_timeout", 60.0, float,
            "Seconds without a turn of the consumer loop after which it counts as stalled."),
)


def port(text: str) -> int:
    """argparse ``type``: a TCP port, 0 to 65535 (0: the system picks one)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {value}")
    return value
