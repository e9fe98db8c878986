"""A real RTSP server on a free loopback port, for tests: GStreamer's, serving shared footage.

``tests/support/rtsp_serve.py`` runs under the SYSTEM ``/usr/bin/python3`` (Debian's GStreamer
bindings are not on PyPI); this module starts, stops, pauses and restarts it. ``stop()`` then
``start()`` reuses the same port, like a camera that reboots; ``pause()``/``resume()``
(SIGSTOP/SIGCONT) freeze it with its connections open, like a camera that hangs.

Example::

    def test_reads(rtsp_server):
        url = rtsp_server.url("car")          # rtsp://127.0.0.1:<port>/car, CAR_CLIP looping
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import CAR_CLIP
from tests.support.ports import free_port, wait_for_port

SYSTEM_PYTHON = "/usr/bin/python3"
SERVE_SCRIPT = Path(__file__).with_name("rtsp_serve.py")


class RtspServer:
    """Serves ``mounts`` ({"car": Path}) at rtsp://127.0.0.1:PORT/<name>, each ``loop`` times over."""

    def __init__(
        self,
        mounts: dict[str, Path],
        *,
        loop: int = 1,
        port: int | None = None,
        log_dir: Path | None = None,
    ):
        for name, path in mounts.items():
            if not Path(path).is_file():
                raise FileNotFoundError(f"RTSP mount {name!r}: no such file {path}")
        self.mounts = {name.strip("/"): Path(path) for name, path in mounts.items()}
        self.loop = loop
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._own_dir = log_dir is None
        self._log_dir = log_dir or Path(tempfile.mkdtemp(prefix="gw-rtsp-"))
        self.log_path = self._log_dir / "rtsp_serve.log"

    def url(self, name: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{name.strip('/')}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 15.0) -> None:
        """Start serving and wait until the port accepts connections."""
        if self.running:
            raise RuntimeError("RTSP server already running")
        command = [SYSTEM_PYTHON, str(SERVE_SCRIPT), "--port", str(self.port), "--loop", str(self.loop)]
        command += ["--workdir", str(self._log_dir)]
        for name, path in self.mounts.items():
            command += ["--mount", f"/{name}={path.resolve()}"]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        try:
            self.proc = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rtsp_serve.py exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                wait_for_port(self.port, timeout=0.2)
                return
            except TimeoutError:
                continue
        self.stop()
        raise TimeoutError(f"RTSP server not listening on {self.port} after {timeout}s:\n{self.log_text()}")

    def stop(self) -> None:
        """Terminate the server (a dead camera); the port can be reused by :meth:`start`."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a paused process cannot handle SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        """Freeze the server with its sockets open: clients stay connected and receive nothing."""
        assert self.proc is not None and self.running
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> RtspServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self._log_dir, ignore_errors=True)


@pytest.fixture
def rtsp_server(tmp_path: Path) -> Iterator[RtspServer]:
    """The car-park clip at ``/car``, looped so it outlasts any test; stopped on teardown."""
    server = RtspServer({"car": CAR_CLIP}, loop=10, log_dir=tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
