"""Draw what the pipeline sees (zones, boxes, track ids, dwell timers) and write it to video.

Used by ``gridwarden edge replay --annotate`` so an integrator tuning a zone sees why a rule did
or did not fire, and by the evidence snapshots.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from gridwarden.edge.analytics.camera_analytics import CameraAnalytics, FrameResult
from gridwarden.edge.analytics.detector.regions import RegionPlan

ZONE_COLOUR = (0, 200, 255)
TRACK_COLOUR = (80, 220, 80)
FIRED_COLOUR = (0, 0, 255)
STATIC_COLOUR = (255, 120, 0)
REGION_COLOUR = (255, 0, 255)  # the crops region inference ran the detector on


def _label(img: np.ndarray, text: str, org: tuple[int, int], colour: tuple[int, int, int]) -> None:
    x, y = org
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    y = max(y, h + 2)
    cv2.rectangle(img, (x, y - h - 3), (x + w + 2, y + base - 1), colour, -1)
    cv2.putText(img, text, (x + 1, y - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)


def draw_result(analytics: CameraAnalytics, result: FrameResult) -> np.ndarray:
    """Return a copy of the frame with zones, tracks, static regions and dwell timers drawn."""
    img = result.frame.image.copy()
    size = (result.frame.width, result.frame.height)
    for zr in analytics.zones:
        pts = zr.zone.polygon_px(size).astype(np.int32)
        cv2.polylines(img, [pts], True, ZONE_COLOUR, 2, cv2.LINE_AA)
        _label(img, zr.zone.zone_id, (int(pts[:, 0].min()), int(pts[:, 1].min())), ZONE_COLOUR)
    if result.regions is not None:
        draw_regions(img, result.regions)
    names = analytics.all_class_names
    tracks = result.tracks
    for i in range(len(tracks)):
        x1, y1, x2, y2 = (int(v) for v in tracks.xyxy[i])
        cls = int(tracks.class_id[i])
        name = names[cls] if 0 <= cls < len(names) else str(cls)
        cv2.rectangle(img, (x1, y1), (x2, y2), TRACK_COLOUR, 2)
        assert tracks.track_id is not None
        _label(
            img, f"#{int(tracks.track_id[i])} {name} {tracks.confidence[i]:.2f}", (x1, y1 - 2), TRACK_COLOUR
        )
    for box in result.static_objects.xyxy:
        x1, y1, x2, y2 = (int(v) for v in box)
        cv2.rectangle(img, (x1, y1), (x2, y2), STATIC_COLOUR, 1)
    for rule in analytics.all_rules():
        for box, dwell, fired in rule.timers():
            x1, y1, x2, y2 = (int(v) for v in box)
            colour = FIRED_COLOUR if fired else ZONE_COLOUR
            if fired:
                cv2.rectangle(img, (x1, y1), (x2, y2), FIRED_COLOUR, 3)
            _label(img, f"{rule.rule_type} {dwell:.0f}s", (x1, min(y2 + 14, size[1] - 2)), colour)
    status = f"t={result.frame.media_time:7.1f}s  {'DET' if result.detected else 'gated'}"
    if result.camera_moving:
        status += "  CAMERA MOVING (dwell paused)"
    _label(img, status, (4, 16), (255, 255, 255))
    return img


def draw_regions(img: np.ndarray, plan: RegionPlan) -> None:
    """Outline each crop the detector looked at, with its scale (x2.0: shown twice as large as
    in the frame); motion crops thinner, so an integrator sees where the model could see."""
    for p in plan.placements:
        x0, y0, x1, y1 = p.box
        cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), REGION_COLOUR, 2 if p.source == "zone" else 1)
        _label(img, f"{p.source} x{p.scale:.1f}", (x0 + 2, y0 + 14), REGION_COLOUR)


class AnnotatedVideoWriter:
    """H.264 MP4 writer (PyAV/libx264) so the output plays in a browser as well as in a player."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), mode="w")
        rate = Fraction(fps).limit_denominator(1000)
        self._stream = self._container.add_stream("libx264", rate=rate)
        # libx264 with yuv420p needs even dimensions.
        self._size = (size[0] - size[0] % 2, size[1] - size[1] % 2)
        self._stream.width, self._stream.height = self._size
        self._stream.pix_fmt = "yuv420p"
        # A keyframe every 2 s, like a camera: browsers seek and evidence clips cut on keyframes.
        self._stream.options = {"preset": "veryfast", "crf": "26", "g": str(max(1, round(2 * fps)))}
        self._closed = False

    def write(self, image: np.ndarray) -> None:
        w, h = self._size
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="bgr24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
