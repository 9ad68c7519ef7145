"""Running the API: in the foreground (``thiqa serve``) or on a background thread (the demo
and the tests, which talk to it over real HTTP)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import tempfile
import threading
import time
from types import FrameType, TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI

from service.api.app import create_app
from service.logs import logging_config
from service.settings import Settings

__all__ = ["BackgroundServer", "free_port", "from_environment", "serve"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


#: prometheus_client reads it when first imported, in each worker process: its counters then
#: live in files there, which any worker's /metrics sums.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def from_environment() -> FastAPI:
    """App factory for ``uvicorn --factory``: each worker reads ``THIQA_*`` itself, and finds
    the metrics folder its parent made."""
    return create_app(Settings(), metrics_dir=os.environ.get(MULTIPROC_ENV), freeze_heap=True)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(settings: Settings, *, workers: int = 1) -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM (``docker stop``, ``systemctl stop``),
    then return through the caller's cleanup."""
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "proxy_headers": False,
        "server_header": False,
        # JSON lines on stderr, applied by uvicorn in every worker process too; no uvicorn
        # access log: the request middleware writes one line per request, with its id.
        "log_config": logging_config(settings.log_level),
        "access_log": False,
    }
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again. With SIGTERM's
    # default action that ends the process on the spot, skipping the caller's cleanup: the
    # embedded redis-server `thiqa serve` started would outlive it. As SystemExit, it unwinds
    # like Ctrl-C does.
    main = threading.current_thread() is threading.main_thread()  # where signals arrive
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm) if main else None
    try:
        if workers > 1:
            # Workers are separate processes: they rebuild Settings from the THIQA_*
            # variables the CLI has exported, and share one fresh metrics folder (a stale one
            # would add a previous run's counts), unless the operator named one.
            with contextlib.ExitStack() as cleanup:
                if not os.environ.get(MULTIPROC_ENV):
                    folder = cleanup.enter_context(
                        tempfile.TemporaryDirectory(prefix="thiqa-metrics-")
                    )
                    os.environ[MULTIPROC_ENV] = folder
                    cleanup.callback(os.environ.pop, MULTIPROC_ENV, None)
                uvicorn.run(
                    "service.api.server:from_environment", factory=True, workers=workers, **common
                )
        else:
            uvicorn.run(create_app(settings, freeze_heap=True), **common)
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


class BackgroundServer:
    """Thiqa on a thread, listening on ``settings.host:settings.port``."""

    def __init__(
        self, settings: Settings, *, log_level: str = "warning", app: FastAPI | None = None
    ) -> None:
        """``app``: one already made by :func:`create_app` from ``settings`` (a test that
        changes one of its parts); by default a fresh one."""
        self.settings = settings
        config = uvicorn.Config(
            app if app is not None else create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level=log_level,
            access_log=False,
            lifespan="on",
            server_header=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="thiqa-server", daemon=True)

    @property
    def url(self) -> str:
        return self.settings.issuer_url

    def start(self, timeout: float = 20.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Thiqa server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
