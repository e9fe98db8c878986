"""A loopback RTSP-over-TCP forwarder that withholds the first seconds of video, for tests.

Used to give one of a camera's two streams a media clock that starts seconds after the other's
while both still show the same live scene, as when a main stream's session is slower to
deliver: the RTSP dialogue passes through untouched and the server starts playing at PLAY as
usual, but the interleaved RTP/RTCP frames (``$``, channel, 16-bit length, payload) it sends
in the first ``hold_s`` seconds after the first one are dropped. The client's first packet is
therefore the scene at ``hold_s``, which its clock calls 0.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from tests.support.ports import free_port


class RtpHoldback:
    def __init__(self, target_port: int, hold_s: float) -> None:
        self.target_port = target_port
        self.hold_s = hold_s
        self.port = free_port()
        self.dropped_frames = 0
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{path.strip('/')}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            for sock in (client, upstream):
                sock.settimeout(None)
            self._sockets += [client, upstream]
            threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._filter, args=(upstream, client), daemon=True).start()

    def _filter(self, src: socket.socket, dst: socket.socket) -> None:
        """Server to client: RTSP messages pass, interleaved frames within the hold are dropped."""
        buf = b""
        release_at: float | None = None
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                buf += data
                while buf:
                    if buf[:1] == b"$":
                        if len(buf) < 4:
                            break
                        end = 4 + int.from_bytes(buf[2:4], "big")
                        if len(buf) < end:
                            break
                        frame, buf = buf[:end], buf[end:]
                        now = time.monotonic()
                        release_at = release_at or now + self.hold_s
                        if now < release_at:
                            self.dropped_frames += 1
                            continue
                        dst.sendall(frame)
                    else:
                        head_end = buf.find(b"\r\n\r\n")
                        if head_end < 0:
                            break
                        head = buf[:head_end].decode("latin-1")
                        length = 0
                        for line in head.split("\r\n"):
                            if line.lower().startswith("content-length:"):
                                length = int(line.split(":", 1)[1])
                        end = head_end + 4 + length
                        if len(buf) < end:
                            break
                        message, buf = buf[:end], buf[end:]
                        dst.sendall(message)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)
