#!/usr/bin/python3
"""Serve local H.264 MP4 files over real RTSP on loopback, for tests.

Run by the SYSTEM interpreter (``/usr/bin/python3``), not the project's virtualenv: it needs
Debian's GStreamer bindings (python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-good
and -bad, gstreamer1.0-rtsp), which are not installable from PyPI. It therefore imports nothing
from the project. Tests start it through ``tests/support/rtsp_server.py``.

Each ``--mount /path=FILE`` serves FILE at ``rtsp://127.0.0.1:PORT/path`` at real-time rate
(the RTSP server's sinks sync to the pipeline clock). Every client gets its own pipeline, so a
reconnecting client starts at the beginning of the file, as with a camera that was restarted.

``--loop N`` plays each file N times back to back through GStreamer's ``concat`` element, which
keeps running time (and so RTP timestamps) continuous across the joins: a seek-based loop would
make timestamps jump backwards, which a real camera never does.

Prints ``READY <port>`` on stdout once the server is attached to its port.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PAYLOAD = "rtph264pay name=pay0 pt=96 config-interval=1"


def launch_line(path: str, loop: int) -> str:
    """The media factory's pipeline for one file, played ``loop`` times."""
    location = path.replace("\\", "\\\\").replace('"', '\\"')
    source = f'filesrc location="{location}" ! qtdemux ! video/x-h264'
    if loop <= 1:
        return f"( {source} ! h264parse ! {PAYLOAD} )"
    branches = " ".join(f"{source} ! queue ! joiner." for _ in range(loop))
    return f"( concat name=joiner ! h264parse ! {PAYLOAD} {branches} )"


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
    args = parser.parse_args(argv)

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for mount, path in args.mount:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch_line(path, args.loop))
        factory.set_shared(False)
        mounts.add_factory(mount, factory)

    if server.attach(None) == 0:
        print(f"cannot listen on {args.host}:{args.port}", file=sys.stderr, flush=True)
        return 2

    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    print(f"READY {args.port}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
