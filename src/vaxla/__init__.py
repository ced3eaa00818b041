"""Växla: open-source communications platform for Swedish municipalities."""

__version__ = "0.1.0"
