"""Structured logs: one JSON object per line on stderr, each tagged with its request.

A line carries ``time`` (RFC 3339, UTC), ``level``, ``logger``, ``message``, the current
request's ``request_id`` and API ``client`` when there is one, and whatever the call passed
as ``extra`` (the request log adds ``method``, ``path``, ``route``, ``status`` and
``duration_ms``). Nothing here ever sees a claim: callers log codes and ids, not values.

Exceptions are logged as their type and the list of frames (file, line, function), *without
the message*: an exception's text can quote the input that caused it (a claim, a key), and
the type and place are enough to find the bug.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

__all__ = [
    "JsonFormatter",
    "RequestContext",
    "bind_client",
    "configure_logging",
    "current_request",
    "logging_config",
]


@dataclass(slots=True)
class RequestContext:
    """What every log line of one request carries. Mutable: the client is only known once
    the API key has been checked, deep inside the request."""

    request_id: str
    client: str | None = None


current_request: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "thiqa_request", default=None
)


def bind_client(name: str) -> None:
    """Tag the current request's log lines with the authenticated client's name."""
    context = current_request.get()
    if context is not None:
        context.client = name


# Attributes every LogRecord has; anything else on a record came from ``extra``. uvicorn
# adds ``color_message``, the message again with terminal colour escapes: not for a JSON line.
_STANDARD: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = current_request.get()
        if context is not None:
            line["request_id"] = context.request_id
            if context.client:
                line["client"] = context.client
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                line[name] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _exc, tb = record.exc_info
            line["exc_type"] = exc_type.__name__
            line["exc_frames"] = [
                f"{frame.filename}:{frame.lineno} in {frame.name}"
                for frame in traceback.extract_tb(tb)
            ]
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def logging_config(level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for Thiqa and uvicorn: JSON lines on stderr.

    uvicorn applies it in each worker process too (``uvicorn.run(log_config=...)``), so a
    multi-worker server logs the same way. uvicorn's access log is not used: the request
    middleware writes one line per request with the request id and client.
    """
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "service.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            "thiqa": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


def configure_logging(level: str) -> None:
    logging.config.dictConfig(logging_config(level))
