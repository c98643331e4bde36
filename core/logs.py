"""Structured logging: text or JSON lines, with the request id of the request being served.

`configure_logging` is called once by every `donjon` command (Log.Level,
Log.Format). The HTTP edge sets `request_id` for the duration of a request; a
filter on the one root handler copies it onto every record, so a plugin's
`logging.getLogger(__name__).info(...)` inside a request is tagged too.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

# The id of the HTTP request this task is serving (None outside requests).
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    # uvicorn's coloured duplicate of `msg`.
    "color_message",
}


class RequestIdFilter(logging.Filter):
    """Sets `record.request_id` to the id of the request being served, or None."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line.

    Keys: `time` (ISO 8601, UTC, milliseconds), `level`, `logger`, `msg`, then
    every `extra=` field that is not None (`request_id` among them), and
    `error` with the traceback when the record carries an exception.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and value is not None:
                entry[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [request_id=...]`, the id only inside requests."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = getattr(record, "request_id", None)
        return f"{line} [request_id={rid}]" if rid else line


def configure_logging(
    level: str = "info",
    fmt: Literal["text", "json"] | str = "text",
    *,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every record at `level` or above to `stream` (stderr) as text or JSON lines.

    Replaces the root logger's handlers with one handler carrying the request
    id filter, and routes uvicorn's loggers and Python warnings (logger
    `py.warnings`) through it, so JSON output stays one object per line.
    uvicorn's access log is silenced: the HTTP edge logs each request itself,
    with its id. Returns the handler.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "litestar"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    return handler
