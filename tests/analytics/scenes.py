"""Synthetic scenes for the analytics tests: detections frame by frame, with ground truth.

Boxes are pixels of a 1280x720 frame at 10 fps unless a test says otherwise. Scripted track ids
let a test force the id switches a real tracker makes under occlusion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import numpy as np

from gridwarden.edge.analytics.rules import IncidentUpdate, RuleContext
from gridwarden.edge.analytics.tracking import Tracker
from gridwarden.edge.types import Detections

FPS = 10.0
FRAME = (1280, 720)
CLASS_NAMES = ["person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck"]
PERSON, CAR, BUS, TRUCK = 0, 2, 5, 7
VEHICLES = {CAR, BUS, TRUCK}
# Monday 2024-06-03 12:00 UTC: inside a 07:00-20:00 weekday schedule.
MONDAY_NOON_UTC = datetime(2024, 6, 3, 12, 0, tzinfo=UTC).timestamp()

# A parked car in the lower half of the frame (the kerb zone in the tests).
CAR_BOX = (400.0, 480.0, 600.0, 580.0)


def times(start: float, stop: float, fps: float = FPS) -> np.ndarray:
    """Frame times in [start, stop), computed from the frame index like a decoder's pts."""
    n = int(round((stop - start) * fps))
    return start + np.arange(n) / fps


def dets(
    boxes: Iterable[Iterable[float]],
    *,
    conf: float | Iterable[float] = 0.8,
    cls: int | Iterable[int] = CAR,
    ids: Iterable[int] | None = None,
) -> Detections:
    xyxy = np.asarray(list(boxes), dtype=np.float32).reshape(-1, 4)
    n = len(xyxy)
    confidence = np.broadcast_to(np.asarray(conf, dtype=np.float32), (n,)).copy()
    class_id = np.broadcast_to(np.asarray(cls, dtype=np.int32), (n,)).copy()
    track_id = None if ids is None else np.asarray(list(ids), dtype=np.int64)
    return Detections(xyxy=xyxy, confidence=confidence, class_id=class_id, track_id=track_id)


def jitter(box: Iterable[float], rng: np.random.Generator, px: float = 2.0) -> list[float]:
    """A detector never returns the same box twice: a couple of pixels of noise."""
    return (np.asarray(list(box), dtype=np.float64) + rng.uniform(-px, px, 4)).tolist()


def context(
    t: float, *, moving: bool = False, wall0: float = MONDAY_NOON_UTC, frame: tuple[int, int] = FRAME
) -> RuleContext:
    return RuleContext(
        camera_id="cam1",
        media_time=float(t),
        wall_time=wall0 + float(t),
        frame_size=frame,
        class_names=CLASS_NAMES,
        camera_moving=moving,
    )


def run(
    rule,
    frames: Iterable[tuple[float, Detections]],
    *,
    tracker: Tracker | None = None,
    moving: Callable[[float], bool] = lambda t: False,
    wall0: float = MONDAY_NOON_UTC,
) -> list[IncidentUpdate]:
    """Feed frames (through the tracker when given) to a rule; collect every event."""
    events: list[IncidentUpdate] = []
    for t, d in frames:
        tracks = tracker.update(d, t) if tracker is not None else d
        events.extend(rule.update(tracks, context(t, moving=moving(t), wall0=wall0)))
    return events


def kinds(events: list[IncidentUpdate]) -> list[str]:
    return [e.event for e in events]
