#!/usr/bin/python3
"""Serve local H.264 or H.265 MP4 files over real RTSP on loopback, for tests.

Run by the SYSTEM interpreter (``/usr/bin/python3``), not the project's virtualenv: it needs
Debian's GStreamer bindings (python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-good
and -bad, gstreamer1.0-rtsp), which are not installable from PyPI. It therefore imports nothing
from the project. Tests start it through ``tests/support/rtsp_server.py``.

Each ``--mount /path=FILE`` serves FILE at ``rtsp://127.0.0.1:PORT/path`` at real-time rate
(the RTSP server's sinks sync to the pipeline clock). Every client gets its own pipeline, so a
reconnecting client starts at the beginning of the file, as with a camera that was restarted.

``--loop N`` plays each file N times back to back. At start-up the file is remuxed (no
re-encode, well under a second) N times over into one temporary MP4 through GStreamer's
``concat`` element, which keeps timestamps continuous across the joins: a seek-based loop would
make RTP timestamps jump backwards, which a real camera never does. (Putting ``concat`` in the
served pipeline itself was tried: after a UDP client's TEARDOWN the server stopped prerolling
new sessions.)

Prints ``READY <port>`` on stdout once the server is attached to its port.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PAYLOADS = {
    "h264": "h264parse ! rtph264pay name=pay0 pt=96 config-interval=1",
    "h265": "h265parse ! rtph265pay name=pay0 pt=96 config-interval=1",
}


def quoted(path: str) -> str:
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def video_codec(path: str) -> str:
    """'h265' when the MP4's video sample entry (in 'stsd') is hvc1/hev1, else 'h264'."""
    with open(path, "rb") as f:
        data = f.read()  # test files are a few MB
    at = data.find(b"stsd")
    entry = data[at + 16 : at + 20] if at >= 0 else b""
    return "h265" if entry in (b"hvc1", b"hev1") else "h264"


def launch_line(path: str) -> str:
    """The media factory's pipeline for one file: demux, packetise, nothing else."""
    return f"( filesrc location={quoted(path)} ! qtdemux ! {PAYLOADS[video_codec(path)]} )"


def write_looped(path: str, loop: int, out_path: str) -> None:
    """Remux ``path`` ``loop`` times back to back into ``out_path`` with continuous timestamps."""
    codec = video_codec(path)
    source = f"filesrc location={quoted(path)} ! qtdemux ! video/x-{codec} ! queue"
    branches = " ".join(f"{source} ! joiner." for _ in range(loop))
    pipeline = Gst.parse_launch(
        f"concat name=joiner ! {codec}parse ! mp4mux ! filesink location={quoted(out_path)} {branches}"
    )
    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    message = bus.timed_pop_filtered(60 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if message is None or message.type != Gst.MessageType.EOS:
        detail = message.parse_error()[0].message if message is not None else "timed out"
        raise RuntimeError(f"could not loop {path}: {detail}")


def parse_mount(text: str) -> tuple[str, str]:
    mount, sep, path = text.partition("=")
    if not sep or not mount.startswith("/") or not path:
        raise argparse.ArgumentTypeError(f"expected /mount=FILE, got {text!r}")
    return mount, path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--mount", type=parse_mount, action="append", required=True)
    parser.add_argument("--loop", type=int, default=1, help="play each file this many times")
    parser.add_argument("--workdir", default=None, help="where looped copies go (default: system temp)")
    args = parser.parse_args(argv)

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    workdir = tempfile.TemporaryDirectory(prefix="gw-rtsp-serve-", dir=args.workdir)
    looped_copies: dict[str, str] = {}  # one looped copy per file, however many mounts serve it
    for number, (mount, path) in enumerate(args.mount):
        if args.loop > 1:
            if path not in looped_copies:
                looped_copies[path] = os.path.join(workdir.name, f"looped-{number}.mp4")
                write_looped(path, args.loop, looped_copies[path])
            path = looped_copies[path]
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch_line(path))
        factory.set_shared(False)
        mounts.add_factory(mount, factory)

    if server.attach(None) == 0:
        print(f"cannot listen on {args.host}:{args.port}", file=sys.stderr, flush=True)
        return 2

    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    parent = os.getppid()

    def quit_when_orphaned() -> bool:
        # A test run that was killed must not leave servers holding ports behind.
        if os.getppid() != parent:
            loop.quit()
            return False
        return True

    GLib.timeout_add_seconds(1, quit_when_orphaned)
    print(f"READY {args.port}", flush=True)
    loop.run()
    workdir.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
