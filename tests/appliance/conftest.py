"""Fixtures of the appliance tests: a real sd_notify socket, and the hub's database fixtures."""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# The hub tests' database fixtures (SQLite and the real PostgreSQL), reused rather than copied.
from tests.hub.conftest import db, db_url, pg_database_url, sqlite_template  # noqa: F401


class NotifyListener:
    """The systemd side of sd_notify: a bound AF_UNIX datagram socket that collects messages."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address  # what NOTIFY_SOCKET would hold

    def drain(self) -> list[str]:
        """Every datagram waiting now, without blocking."""
        out = []
        self.sock.setblocking(False)
        try:
            while True:
                out.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            return out
        finally:
            self.sock.setblocking(True)

    def collect(self, seconds: float) -> list[str]:
        """Every datagram arriving within ``seconds``."""
        out = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                out.append(self.sock.recv(4096).decode())
            except TimeoutError:
                break
        self.sock.settimeout(None)
        return out

    def wait_for(self, line: str, timeout: float = 10.0) -> list[str]:
        """Datagrams up to and including the first that contains ``line``; fails on timeout."""
        seen = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                message = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            seen.append(message)
            if line in message.split("\n"):
                self.sock.settimeout(None)
                return seen
        pytest.fail(f"no sd_notify message with {line!r} within {timeout}s; got {seen}")


@pytest.fixture
def notify_socket() -> Iterator[NotifyListener]:
    """A filesystem notify socket (under a short /tmp path: AF_UNIX paths max out at 107 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="gw-sd-", dir="/tmp"))
    path = folder / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    try:
        yield NotifyListener(sock, str(path))
    finally:
        sock.close()
        path.unlink(missing_ok=True)
        folder.rmdir()


@pytest.fixture
def abstract_notify_socket() -> Iterator[NotifyListener]:
    """A notify socket in the abstract namespace, as systemd itself may hand out ('@name')."""
    name = f"gridwarden-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    try:
        yield NotifyListener(sock, "@" + name)
    finally:
        sock.close()
