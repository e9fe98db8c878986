"""A camera's main (record) stream for tests: a scenario clip scaled up, with a frame-number code.

Street cameras send the same scene twice: a small sub-stream for analysis and a large main
stream for recording. :func:`build_main_stream` makes the main stream of a scenario: every frame
scaled to ``size`` and re-encoded (libx264 or libx265, a keyframe every 2 s), with the frame's
index drawn as a binary code in a strip along the top (:data:`CODE_BITS` white/black blocks).
:func:`read_frame_code` reads it back from any decoded frame, so a test can tell exactly which
moment of the scenario a clip cut from the main stream starts and ends at.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

CODE_BITS = 12
CODE_HEIGHT = 24


def build_main_stream(
    source: Path,
    out: Path,
    size: tuple[int, int] = (1280, 720),
    codec: str = "libx264",
    max_frames: int | None = None,
) -> Path:
    """Write ``source`` (its first ``max_frames``) scaled to ``size`` with frame codes, encoded
    with ``codec``."""
    if out.exists():
        return out
    width, height = size
    tmp = out.with_suffix(".part.mp4")
    with av.open(str(source)) as src, av.open(str(tmp), mode="w") as dst:
        in_stream = src.streams.video[0]
        rate = Fraction(in_stream.average_rate or Fraction(25, 2))
        stream = dst.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        gop = str(int(round(float(rate) * 2)))
        if codec == "libx265":
            stream.options = {
                "preset": "ultrafast",
                "x265-params": f"keyint={gop}:min-keyint={gop}:log-level=error",
            }
            stream.codec_context.codec_tag = "hvc1"  # what Chromium and Safari want in MP4
        else:
            stream.options = {"preset": "ultrafast", "crf": "23", "g": gop}
        for index, frame in enumerate(src.decode(in_stream)):
            if max_frames is not None and index >= max_frames:
                break
            image = cv2.resize(frame.to_ndarray(format="bgr24"), size, interpolation=cv2.INTER_LINEAR)
            draw_frame_code(image, index)
            out_frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            out_frame.pts = index
            out_frame.time_base = Fraction(1) / rate
            for packet in stream.encode(out_frame):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    tmp.rename(out)
    return out


def draw_frame_code(image: np.ndarray, index: int) -> None:
    """Draw ``index`` as CODE_BITS blocks (white = 1, most significant first) along the top."""
    width = image.shape[1]
    block = width // CODE_BITS
    image[:CODE_HEIGHT] = 0
    for bit in range(CODE_BITS):
        if index >> (CODE_BITS - 1 - bit) & 1:
            image[:CODE_HEIGHT, bit * block : (bit + 1) * block] = 255


def read_frame_code(image: np.ndarray) -> int:
    """The frame index drawn by :func:`draw_frame_code` (read at each block's centre)."""
    width = image.shape[1]
    block = width // CODE_BITS
    row = image[CODE_HEIGHT // 2]
    value = 0
    for bit in range(CODE_BITS):
        value = value << 1 | int(row[bit * block + block // 2].mean() > 128)
    return value
