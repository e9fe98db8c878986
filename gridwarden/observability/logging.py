"""Log set-up for every Gridwarden process: JSON lines for machines, a readable line for people.

Why two formats: under systemd stderr goes to the journal and from there to whatever collects
logs (Loki, Elastic, ...), which wants one JSON object per line with stable field names, while a
person running ``gridwarden edge run`` in a terminal wants to read the line. So the format
follows where stderr goes, unless forced by the argument or by ``$GRIDWARDEN_LOG_FORMAT``
(``json`` or ``text``).

Fields of a JSON line: ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``,
``message``, ``exception`` (the formatted traceback, when there is one), then every ``extra=``
field given to the logging call, e.g.::

    log.warning("camera offline", extra={"camera": "cam-01", "reconnects": 3})
    {"time": "2025-01-01T10:00:00.123Z", "level": "WARNING", "logger": "gridwarden.edge",
     "message": "camera offline", "camera": "cam-01", "reconnects": 3}
"""

from __future__ import annotations

import json as _json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

FORMAT_ENV = "GRIDWARDEN_LOG_FORMAT"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
# The fields a JSON line always has; an ``extra`` with one of these names is prefixed.
_RESERVED = frozenset({"time", "level", "logger", "message", "exception", "stack"})


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        (f"extra_{key}" if key in _RESERVED else key): value
        for key, value in record.__dict__.items()
        if key not in _STANDARD_ATTRS and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line; values json cannot encode are written as str()."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        entry.update(_extras(record))
        return _json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The classic one-line format, with ``extra=`` fields appended as ``key=value``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if not extras:
            return line
        head, sep, tail = line.partition("\n")  # keep a traceback below the fields
        fields = " ".join(
            f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}"
            for key, value in extras.items()
        )
        return f"{head} [{fields}]{sep}{tail}"


class _GridwardenHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Marks the handler we installed, so a second configure_logging replaces it, not adds one."""


def wants_json(stream: TextIO, environ: dict[str, str] | None = None) -> bool:
    """JSON unless the stream is a terminal; ``$GRIDWARDEN_LOG_FORMAT`` (json|text) overrides."""
    env = os.environ if environ is None else environ
    forced = env.get(FORMAT_ENV, "").strip().lower()
    if forced in ("json", "text"):
        return forced == "json"
    if forced:
        raise ValueError(f"{FORMAT_ENV} must be 'json' or 'text', got {forced!r}")
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):  # closed or exotic streams: machines read them
        return True


def configure_logging(
    level: str | int = "INFO", json: bool | None = None, *, stream: TextIO | None = None
) -> logging.Handler:
    """Send all logging to ``stream`` (stderr) in JSON or text, at ``level``; idempotent.

    ``json=None`` picks by :func:`wants_json`. Replaces handlers an earlier call installed and
    leaves other handlers (e.g. pytest's capture) alone. Returns the installed handler.

    Uvicorn installs its own handlers unless started with ``log_config=None``; pass that so its
    lines come through here too.
    """
    stream = stream if stream is not None else sys.stderr
    use_json = wants_json(stream) if json is None else json
    if isinstance(level, str):
        resolved = logging.getLevelName(level.upper())
        if not isinstance(resolved, int):
            raise ValueError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
        level = resolved
    handler = _GridwardenHandler(stream)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _GridwardenHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return handler
