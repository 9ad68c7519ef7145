"""The ``thiqa`` command: serve, demo, clients, keys."""

from .main import app, main

__all__ = ["app", "main"]
