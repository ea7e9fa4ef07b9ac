"""The web monitor: ``corekit monitor --port 5555``."""
