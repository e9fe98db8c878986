"""Evidence cut at the edge for each incident, and its safe transfer to the hub.

* :mod:`.ring_buffer` keeps each camera's last seconds of ENCODED packets (the pre-roll);
* :mod:`.clips` remuxes pre-roll + post-roll into an MP4 without re-encoding;
* :mod:`.snapshots` writes the clean and the annotated JPEG of the moment the rule fired;
* :mod:`gridwarden.edge.transport.uploader` spools the files durably and PUTs them to the hub until acknowledged;
* :mod:`.camera` wires them together for one camera (the hooks the capture code calls);
* :mod:`.files` is the :class:`EvidenceFile` value (path + hash + media span) they share.
"""

from gridwarden.edge.capture.evidence.camera import CameraEvidence
from gridwarden.edge.capture.evidence.clips import ClipRecorder, FinishedClip, write_clip
from gridwarden.edge.capture.evidence.files import EvidenceFile, sha256_file
from gridwarden.edge.capture.evidence.ring_buffer import (
    BufferedPacket,
    PacketClock,
    PacketRingBuffer,
    StreamInfo,
)
from gridwarden.edge.capture.evidence.snapshots import draw_overlay, write_snapshots
from gridwarden.edge.transport.uploader import EvidenceUploader

__all__ = [
    "BufferedPacket",
    "CameraEvidence",
    "ClipRecorder",
    "EvidenceFile",
    "EvidenceUploader",
    "FinishedClip",
    "PacketClock",
    "PacketRingBuffer",
    "StreamInfo",
    "draw_overlay",
    "sha256_file",
    "write_clip",
    "write_snapshots",
]
