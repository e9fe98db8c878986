"""Log format: JSON lines off a terminal, readable text on one (a real pty), extras in both."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator

import pytest

from gridwarden.observability.logging import FORMAT_ENV, configure_logging, wants_json


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


@pytest.fixture(autouse=True)
def no_format_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FORMAT_ENV, raising=False)


def test_json_lines_with_standard_and_extra_fields(restore_root_logging: None) -> None:
    out = io.StringIO()  # not a terminal
    configure_logging("INFO", stream=out)
    log = logging.getLogger("gridwarden.edge.test")
    log.info("camera %s offline", "cam-01", extra={"camera": "cam-01", "reconnects": 3, "lag": None})
    log.debug("not shown at INFO")
    try:
        raise RuntimeError("decoder died")
    except RuntimeError:
        log.exception("reader failed", extra={"level": "clash", "path": object()})
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "INFO"
    assert first["logger"] == "gridwarden.edge.test"
    assert first["message"] == "camera cam-01 offline"
    assert first["camera"] == "cam-01" and first["reconnects"] == 3 and first["lag"] is None
    assert first["time"].endswith("Z") and len(first["time"]) == len("2025-01-01T10:00:00.123Z")
    assert "exception" not in first
    assert second["level"] == "ERROR"
    assert second["message"] == "reader failed"
    assert "RuntimeError: decoder died" in second["exception"]
    assert second["extra_level"] == "clash"  # an extra cannot overwrite a standard field
    assert second["path"].startswith("<object object")  # not JSON-encodable: written as str()


def test_human_format_on_a_terminal(restore_root_logging: None) -> None:
    master, slave = os.openpty()
    with os.fdopen(slave, "w", buffering=1) as tty:
        assert wants_json(tty) is False
        configure_logging("DEBUG", stream=tty)
        logging.getLogger("gridwarden.hub").debug("case %d confirmed", 7, extra={"actor": "ana"})
        text = os.read(master, 4096).decode()
    os.close(master)
    line = text.strip()
    assert not line.startswith("{")
    assert " DEBUG gridwarden.hub: case 7 confirmed [actor='ana']" in line


def test_forcing_and_environment_override(
    restore_root_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    configure_logging("INFO", json=False, stream=out)
    logging.getLogger("x").warning("plain")
    assert out.getvalue().rstrip().endswith("WARNING x: plain")

    monkeypatch.setenv(FORMAT_ENV, "text")
    assert wants_json(io.StringIO()) is False
    monkeypatch.setenv(FORMAT_ENV, "json")
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as tty:
        assert wants_json(tty) is True
    os.close(master)
    monkeypatch.setenv(FORMAT_ENV, "yaml")
    with pytest.raises(ValueError, match="GRIDWARDEN_LOG_FORMAT"):
        wants_json(io.StringIO())


def test_reconfiguring_replaces_the_handler_and_rejects_bad_levels(restore_root_logging: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", stream=first)
    configure_logging("WARNING", stream=second)
    logging.getLogger("y").warning("once")
    logging.getLogger("y").info("filtered")
    assert first.getvalue() == ""
    assert [json.loads(line)["message"] for line in second.getvalue().splitlines()] == ["once"]
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("LOUD")
