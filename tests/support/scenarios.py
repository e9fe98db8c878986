"""Test scenarios built from the real clips in ../shared/media, with their ground truth.

Neither shared clip has a vehicle that stays put for minutes, so the parked-car scenario holds
one real frame of car-detection.mp4 for the dwell time and re-encodes with PyAV's libx264.

Ground truth of :func:`build_parked_car_clip` (read off the clip frame by frame):

* car-detection.mp4 is 12.5 fps. A white car enters from the bottom around frame 56 and drives
  up the frame; at frame 76 (t = 6.08 s) its box is about x 0.34..0.56, y 0.28..0.88 of the frame
  (bottom-centre anchor near (0.45, 0.88)).
* The scenario plays frames 0..76, then repeats frame 76 for ``hold_s`` seconds, then plays
  frames 77..376. So the car stands still from ``HOLD_START`` = 6.08 s to ``HOLD_START + hold_s``,
  then drives on up; its anchor leaves :data:`PARKING_ZONE` (y ≥ 0.62) within ~0.6 s
  (frame 84 has its bottom edge at y ≈ 0.55).
* Other cars in the clip drive through the lower half later without stopping.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from tests.support.paths import CAR_CLIP

FPS = 12.5
HOLD_FRAME = 76
HOLD_START = HOLD_FRAME / FPS  # 6.08 s
# Seconds after the hold ends until the car's bottom-centre leaves PARKING_ZONE.
LEAVE_AFTER_HOLD_S = 0.6

# A no-parking zone drawn around where the white car stops (normalised x, y).
PARKING_ZONE = [[0.25, 0.62], [0.70, 0.62], [0.70, 0.99], [0.25, 0.99]]


@dataclass(frozen=True)
class ParkedCarScenario:
    path: Path
    hold_s: float
    stop_time: float  # media time the car stops in the zone
    leave_time: float  # media time its anchor leaves the zone

    def expected_start(self, dwell_s: float) -> float:
        return self.stop_time + dwell_s


def build_parked_car_clip(
    out: Path, hold_s: float = 90.0, source: Path = CAR_CLIP, last_frame: int | None = None
) -> ParkedCarScenario:
    """Write the parked-car scenario (H.264 MP4, 12.5 fps, 768x432) and return its ground truth.

    ``last_frame`` cuts the clip short (e.g. 110: the car has left the zone by frame 84), which
    keeps real-time RTSP tests short.
    """
    if not out.exists():
        _write_held_clip(source, out, HOLD_FRAME, hold_s, last_frame)
    return ParkedCarScenario(
        path=out,
        hold_s=hold_s,
        stop_time=HOLD_START,
        leave_time=HOLD_START + hold_s + LEAVE_AFTER_HOLD_S,
    )


def _write_held_clip(source: Path, out: Path, hold_index: int, hold_s: float, last_frame: int | None) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part.mp4")
    with av.open(str(source)) as src, av.open(str(tmp), mode="w") as dst:
        in_stream = src.streams.video[0]
        rate = Fraction(in_stream.average_rate or Fraction(25, 2))
        stream = dst.add_stream("libx264", rate=rate)
        stream.width = in_stream.codec_context.width
        stream.height = in_stream.codec_context.height
        stream.pix_fmt = "yuv420p"
        # A keyframe every 2 s like a typical IP camera; fast preset keeps test setup short.
        stream.options = {"preset": "ultrafast", "crf": "23", "g": str(int(round(float(rate) * 2)))}
        repeats = int(round(hold_s * float(rate)))
        pts = 0
        for index, frame in enumerate(src.decode(in_stream)):
            if last_frame is not None and index > last_frame:
                break
            copies = 1 + (repeats if index == hold_index else 0)
            img = frame.to_ndarray(format="yuv420p")
            for _ in range(copies):
                out_frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
                out_frame.pts = pts
                out_frame.time_base = Fraction(1) / rate
                pts += 1
                for packet in stream.encode(out_frame):
                    dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    tmp.rename(out)
