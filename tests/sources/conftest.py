"""Fixtures for the source tests: the real RTSP server and a camera that accepts and stays silent."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.support.rtsp_server import rtsp_server  # noqa: F401 - fixture re-exported for this folder


@pytest.fixture
def silent_tcp_port() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never sends a byte (a hung camera)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept_forever() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        done.set()
        thread.join(2)
        listener.close()
        for conn in accepted:
            conn.close()
