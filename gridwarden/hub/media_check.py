"""Is an uploaded file really the picture or clip it claims to be?

Three magic bytes prove nothing: ``FF D8 FF`` followed by 200 MiB of zeros, or ``\\xff\\xd8<html>``,
sniffs as a JPEG. The hub keeps and serves what edges upload to reviewers' browsers, so before a
file is kept it is checked by what it *is*:

* a JPEG must end with the EOI marker, declare its size in a frame header (SOF) of at most
  :data:`MAX_JPEG_SIDE` pixels a side, and decode (OpenCV) to exactly that size. The header is
  read before decoding, so a 65535 x 65535 "decompression bomb" is refused without allocating it.
* an MP4 must open as an MP4/MOV container (FFmpeg through PyAV) and hold a video stream of a
  sane size whose first frame decodes; besides video only audio is allowed (a camera with a
  microphone), no subtitle, data or attachment streams.

Each check raises :class:`InvalidMedia` with a sentence saying what is wrong.
"""

from __future__ import annotations

import struct
from pathlib import Path

MAX_JPEG_SIDE = 8192
MAX_VIDEO_SIDE = 8192
# Markers that carry a frame header (SOF0..SOF15 except DHT C4, JPG C8, DAC CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class InvalidMedia(ValueError):
    """The file is not a well-formed image/video of the declared type."""


def jpeg_dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) from the first frame header, walking the marker segments.

    >>> jpeg_dimensions(b"\\xff\\xd8\\xff\\xc0\\x00\\x0b\\x08\\x00\\x10\\x00\\x20\\x01\\x01\\x11\\x00")
    (32, 16)
    """
    if data[:2] != b"\xff\xd8":
        raise InvalidMedia("not a JPEG: no start-of-image marker")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise InvalidMedia(f"not a JPEG: no marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # stand-alone markers
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            raise InvalidMedia(f"not a JPEG: segment length {length} at byte {pos}")
        if marker in _SOF_MARKERS:
            if pos + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        if marker in (0xDA, 0xD9):  # scan data or end before any frame header
            break
        pos += 2 + length
    raise InvalidMedia("not a JPEG: no frame header with the image size")


def check_jpeg(data: bytes, *, max_side: int = MAX_JPEG_SIDE) -> tuple[int, int]:
    """Raise :class:`InvalidMedia` unless ``data`` is a whole JPEG of sane size; returns (w, h)."""
    import cv2
    import numpy as np

    width, height = jpeg_dimensions(data)
    if not (1 <= width <= max_side and 1 <= height <= max_side):
        raise InvalidMedia(f"JPEG of {width}x{height} pixels; at most {max_side} a side is accepted")
    if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise InvalidMedia("truncated JPEG: no end-of-image marker")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.shape[0] != height or image.shape[1] != width:
        raise InvalidMedia("the JPEG does not decode")
    return width, height


def check_jpeg_file(path: Path, *, max_side: int = MAX_JPEG_SIDE) -> tuple[int, int]:
    return check_jpeg(Path(path).read_bytes(), max_side=max_side)


def check_mp4_file(path: Path, *, max_side: int = MAX_VIDEO_SIDE) -> tuple[int, int]:
    """Raise :class:`InvalidMedia` unless ``path`` is an MP4 with a video stream whose first frame
    decodes (see the module docstring); returns that stream's (width, height)."""
    import av

    try:
        with av.open(str(path), format="mp4") as container:
            streams = list(container.streams)
            if not container.streams.video:
                raise InvalidMedia("the MP4 holds no video stream")
            others = sorted({s.type for s in streams if s.type not in ("video", "audio")})
            if others:
                raise InvalidMedia(f"the MP4 holds streams that are not video ({', '.join(others)})")
            video = container.streams.video[0]
            width, height = video.codec_context.width, video.codec_context.height
            if not (1 <= width <= max_side and 1 <= height <= max_side):
                raise InvalidMedia(f"video of {width}x{height} pixels; at most {max_side} a side")
            for _frame in container.decode(video):
                return width, height
    except InvalidMedia:
        raise
    except (av.FFmpegError, ValueError, OSError, StopIteration) as exc:
        raise InvalidMedia(f"the MP4 does not parse: {exc}") from exc
    raise InvalidMedia("the MP4's video has no decodable frame")


def check_media_file(path: Path, content_type: str) -> None:
    """Dispatch on the (already allow-listed) content type."""
    if content_type == "image/jpeg":
        check_jpeg_file(path)
    elif content_type == "video/mp4":
        check_mp4_file(path)
    else:  # pragma: no cover - the store allow-lists content types before this
        raise InvalidMedia(f"no check for {content_type}")
