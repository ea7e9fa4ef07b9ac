"""Placeholder until the speedups land."""
