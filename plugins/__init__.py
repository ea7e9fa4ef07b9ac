"""corekit's built-in plugins, installed as ``corekit.plugins``.

Each module is registered under the ``corekit.plugins`` entry-point group in
pyproject.toml, exactly as a third-party plugin would be; the kernel never
imports this package directly.
"""
