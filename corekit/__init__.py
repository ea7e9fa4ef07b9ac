"""Kernel re-exports; filled in as modules land."""
