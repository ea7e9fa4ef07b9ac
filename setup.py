"""Build the Cython hot path; everything else lives in pyproject.toml.

Set COREKIT_NO_EXTENSIONS=1 to install the pure-Python twins only.
"""
import os

from setuptools import setup

SPEEDUPS = ("_decode", "_etaheap", "_dispatch")


def extensions():
    if os.environ.get("COREKIT_NO_EXTENSIONS", "") not in ("", "0"):
        return []
    from Cython.Build import cythonize
    from setuptools import Extension

    modules = [
        Extension(f"corekit._speedups.{name}", [f"corekit/_speedups/{name}.pyx"])
        for name in SPEEDUPS
    ]
    return cythonize(modules, language_level=3, quiet=True)


setup(ext_modules=extensions())
