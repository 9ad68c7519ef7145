"""The ``thiqa`` command: serve, demo, clients, keys."""

from service.cli.main import app, main

__all__ = ["app", "main"]
