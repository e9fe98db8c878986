"""Small objects in a 1080p street view, built from ../shared footage (never committed).

car-detection.mp4 (768x432) is shrunk to :data:`CLIP_SCALE` and pasted into the bottom-right
corner of a 1920x1080 canvas whose background is a still frame of the person clip (real texture,
no motion). Its cars then measure about 65x105 px: a bicycle's size at street distance in a
1080p view (the district's case: about 4 % of the frame wide). Letterboxed whole into a 416 px
model input they become about 14x23 px, under what yolox_nano finds.

Ground truth follows :mod:`tests.support.scenarios`: the white car stops in the (pasted) parking
zone at frame 76 = 6.08 s; boxes map with :func:`clip_box_to_canvas`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from tests.support.paths import CAR_CLIP, PERSON_CLIP
from tests.support.scenarios import FPS, HOLD_FRAME, HOLD_START, LEAVE_AFTER_HOLD_S, PARKING_ZONE

CANVAS_SIZE = (1920, 1080)
CLIP_SIZE = (768, 432)
CLIP_SCALE = 0.35
PASTED_SIZE = (round(CLIP_SIZE[0] * CLIP_SCALE), round(CLIP_SIZE[1] * CLIP_SCALE))  # 269 x 151
# Top-left corner of the pasted clip on the canvas.
ORIGIN = (CANVAS_SIZE[0] - PASTED_SIZE[0] - 60, CANVAS_SIZE[1] - PASTED_SIZE[1] - 60)

#: Frames of car-detection.mp4 in which yolox_nano finds a car at >= 0.5 on the original clip
#: (white car driving in and out at 76-90; two cars at 204-216; one at 324-336).
CAR_FRAMES = (76, 78, 84, 90, 204, 210, 216, 324, 330, 336)


def clip_point_to_canvas(x: float, y: float) -> tuple[float, float]:
    """A normalised point of the clip as a normalised point of the canvas."""
    return (
        (ORIGIN[0] + x * PASTED_SIZE[0]) / CANVAS_SIZE[0],
        (ORIGIN[1] + y * PASTED_SIZE[1]) / CANVAS_SIZE[1],
    )


def clip_box_to_canvas(xyxy: np.ndarray) -> np.ndarray:
    """Boxes in clip pixels as boxes in canvas pixels."""
    out = np.asarray(xyxy, dtype=np.float32).copy()
    out[:, 0::2] = out[:, 0::2] * PASTED_SIZE[0] / CLIP_SIZE[0] + ORIGIN[0]
    out[:, 1::2] = out[:, 1::2] * PASTED_SIZE[1] / CLIP_SIZE[1] + ORIGIN[1]
    return out


#: The parked-car zone of tests.support.scenarios, where it lands on the canvas.
SMALL_PARKING_ZONE = [list(clip_point_to_canvas(x, y)) for x, y in PARKING_ZONE]
#: A second zone, a pavement strip on the left where nothing happens (bicycles would be there).
PAVEMENT_ZONE = [[0.05, 0.75], [0.45, 0.75], [0.45, 0.95], [0.05, 0.95]]


def background() -> np.ndarray:
    """The still street-ish background: the person clip's first frame, at 1080p."""
    with av.open(str(PERSON_CLIP)) as container:
        first = next(iter(container.decode(video=0))).to_ndarray(format="bgr24")
    return cv2.resize(first, CANVAS_SIZE, interpolation=cv2.INTER_LINEAR)


def compose(clip_frame: np.ndarray, back: np.ndarray) -> np.ndarray:
    """The canvas with ``clip_frame`` shrunk into its corner."""
    out = back.copy()
    x0, y0 = ORIGIN
    w, h = PASTED_SIZE
    out[y0 : y0 + h, x0 : x0 + w] = cv2.resize(clip_frame, PASTED_SIZE, interpolation=cv2.INTER_AREA)
    return out


def read_clip_frames(indices: tuple[int, ...]) -> dict[int, np.ndarray]:
    wanted = set(indices)
    frames: dict[int, np.ndarray] = {}
    with av.open(str(CAR_CLIP)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                frames[index] = frame.to_ndarray(format="bgr24")
            if index >= max(wanted):
                break
    return frames


@dataclass(frozen=True)
class SmallParkedCar:
    path: Path
    hold_s: float
    stop_time: float
    leave_time: float

    def expected_start(self, dwell_s: float) -> float:
        return self.stop_time + dwell_s


def build_small_parked_car_clip(out: Path, hold_s: float = 30.0, last_frame: int = 150) -> SmallParkedCar:
    """The parked-car scenario (frame 76 held for ``hold_s``) at 1080p with the car small.

    Written with PyAV's libx264 at 12.5 fps; ``last_frame`` 150 ends it 4 s after the car has
    driven out of the zone (it leaves ~0.6 s after the hold; no other car comes before frame 190),
    so the place is seen empty long enough for the incident to end.
    """
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".part.mp4")
        back = background()
        rate = Fraction(25, 2)
        with av.open(str(CAR_CLIP)) as src, av.open(str(tmp), mode="w") as dst:
            stream = dst.add_stream("libx264", rate=rate)
            stream.width, stream.height = CANVAS_SIZE
            stream.pix_fmt = "yuv420p"
            stream.options = {"preset": "ultrafast", "crf": "23", "g": "25"}
            pts = 0
            for index, frame in enumerate(src.decode(video=0)):
                if index > last_frame:
                    break
                picture = av.VideoFrame.from_ndarray(
                    compose(frame.to_ndarray(format="bgr24"), back), format="bgr24"
                )
                picture = picture.reformat(format="yuv420p")
                copies = 1 + (round(hold_s * FPS) if index == HOLD_FRAME else 0)
                for _ in range(copies):
                    picture.pts = pts
                    picture.time_base = Fraction(1) / rate
                    pts += 1
                    for packet in stream.encode(picture):
                        dst.mux(packet)
            for packet in stream.encode():
                dst.mux(packet)
        tmp.rename(out)
    return SmallParkedCar(out, hold_s, HOLD_START, HOLD_START + hold_s + LEAVE_AFTER_HOLD_S)
