"""A resident's photo: proven to be a real picture, then re-encoded before the hub keeps it.

Phones send JPEG (or PNG from a screenshot). The bytes are checked the way edge uploads are
(:mod:`gridwarden.hub.media_check`: the declared size is read from the header and bounded before
anything is decoded, then the whole image must decode to that size), then scaled to at most
:data:`MAX_KEPT_SIDE` pixels a side and re-encoded as JPEG. Re-encoding drops the EXIF block,
which on a phone photo holds the reporter's GPS position and device, and bounds what the hub
stores and serves whatever was uploaded.
"""

from __future__ import annotations

import hashlib
import struct

from gridwarden.hub.media_check import MAX_JPEG_SIDE, InvalidMedia, check_jpeg

MAX_KEPT_SIDE = 1920
JPEG_QUALITY = 85
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png(data: bytes) -> tuple[int, int]:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise InvalidMedia("not a PNG: no image header")
    width, height = struct.unpack(">II", data[16:24])
    if not (1 <= width <= MAX_JPEG_SIDE and 1 <= height <= MAX_JPEG_SIDE):
        raise InvalidMedia(f"PNG of {width}x{height} pixels; at most {MAX_JPEG_SIDE} a side is accepted")
    return width, height


def normalise_photo(data: bytes) -> tuple[bytes, str]:
    """The photo as a cleaned JPEG and its sha256; :class:`InvalidMedia` unless it is a whole,
    decodable JPEG or PNG of sane size."""
    import cv2
    import numpy as np

    if data[:3] == b"\xff\xd8\xff":
        width, height = check_jpeg(data)
    elif data[:8] == PNG_SIGNATURE:
        width, height = _check_png(data)
    else:
        raise InvalidMedia("the photo must be a JPEG or PNG picture")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape[:2] != (height, width):
        raise InvalidMedia("the picture does not decode")
    scale = MAX_KEPT_SIDE / max(width, height)
    if scale < 1.0:
        image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - OpenCV encodes any decoded 8-bit image
        raise InvalidMedia("the picture could not be re-encoded")
    jpeg = encoded.tobytes()
    return jpeg, hashlib.sha256(jpeg).hexdigest()
