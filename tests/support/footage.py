"""Street situations the shared clips do not contain, built from their real frames by code.

A clip is a timeline of :class:`Play` (source frames in order) and :class:`Hold` (one source frame
repeated: a car that stops) segments, written at the source's 12.5 fps with libx264, and a list
of effects applied to every output frame by its output time ``t``:

* :class:`Occluder` - a panel no detector class fits (the roof of a bus or lorry seen from an
  elevated camera: light grey with darker ribs) that slides in over a place, stays, and slides out;
* :class:`Dusk` - the picture darkened to dusk levels with sensor noise raised;
* :class:`Flicker` - short brightness pulses, like headlights sweeping the view;
* :class:`Shadow` - a soft shadow band that sweeps slowly across the view.

Source frames are decoded once, in order (segments must not go back in the source), so building a
two-minute clip holds one frame in memory, not the whole source.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import numpy as np

from tests.support.paths import CAR_CLIP


@dataclass(frozen=True)
class Play:
    """Source frames ``first..last`` (inclusive), once each."""

    first: int
    last: int


@dataclass(frozen=True)
class Hold:
    """Source frame ``index`` repeated for ``seconds``."""

    index: int
    seconds: float


Segment = Play | Hold


class Effect(Protocol):
    def __call__(self, image: np.ndarray, t: float) -> np.ndarray: ...


@dataclass(frozen=True)
class Occluder:
    """A panel over ``box`` (normalised xyxy) from ``start`` to ``end`` (seconds of output time),
    sliding in from the right and out to the left over ``slide_s``."""

    box: tuple[float, float, float, float]
    start: float
    end: float
    slide_s: float = 1.0

    def __call__(self, image: np.ndarray, t: float) -> np.ndarray:
        if not self.start <= t < self.end:
            return image
        h, w = image.shape[:2]
        x0, y0, x1, y1 = (int(round(v * s)) for v, s in zip(self.box, (w, h, w, h), strict=True))
        width = x1 - x0
        shift = 0
        if t < self.start + self.slide_s:  # entering from the right
            shift = int(round(width * (1 - (t - self.start) / self.slide_s)))
        elif t > self.end - self.slide_s:  # leaving to the left
            shift = -int(round(width * (1 - (self.end - t) / self.slide_s)))
        out = image.copy()
        panel = _roof_panel(y1 - y0, width)
        lo, hi = max(x0 + shift, 0), min(x1 + shift, w)
        if hi > lo:
            out[y0:y1, lo:hi] = panel[:, lo - (x0 + shift) : hi - (x0 + shift)]
        return out


def _roof_panel(h: int, w: int) -> np.ndarray:
    panel = np.empty((h, w, 3), np.uint8)
    panel[:] = (178, 182, 186)
    for y in range(h // 8, h, max(h // 6, 4)):  # roof ribs
        panel[y : y + 3] = (120, 124, 128)
    panel[:, :4] = panel[:, -4:] = (90, 92, 96)  # the roof's edge
    return panel


@dataclass(frozen=True)
class Dusk:
    """Brightness scaled by ``gain`` (dusk: ~0.3) and Gaussian sensor noise of ``noise`` levels."""

    gain: float = 0.3
    noise: float = 8.0
    seed: int = 7

    def __call__(self, image: np.ndarray, t: float) -> np.ndarray:
        rng = np.random.default_rng(self.seed + int(t * 1000))
        noisy = image.astype(np.float32) * self.gain + rng.normal(0.0, self.noise, image.shape)
        return np.clip(noisy, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Flicker:
    """Every ``period_s``, ``pulse_s`` of brightness scaled up by ``1 + amplitude``."""

    period_s: float = 7.0
    pulse_s: float = 1.0
    amplitude: float = 0.6

    def __call__(self, image: np.ndarray, t: float) -> np.ndarray:
        if (t % self.period_s) >= self.pulse_s:
            return image
        return np.clip(image.astype(np.float32) * (1 + self.amplitude), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Shadow:
    """A shadow band ``width`` of the frame wide, darkening by ``depth``, sweeping left to right
    across the frame from ``start`` to ``end`` (a building's shadow moves a few pixels a second)."""

    start: float
    end: float
    width: float = 0.35
    depth: float = 0.45

    def __call__(self, image: np.ndarray, t: float) -> np.ndarray:
        if not self.start <= t < self.end:
            return image
        h, w = image.shape[:2]
        centre = -self.width + (1 + 2 * self.width) * (t - self.start) / (self.end - self.start)
        x = np.arange(w, dtype=np.float32) / w
        # Soft penumbra: full depth in the middle of the band, fading over its outer quarters.
        inside = np.clip(1.0 - np.abs(x - centre) / (self.width / 2), 0.0, 1.0)
        factor = 1.0 - self.depth * np.clip(inside * 2.0, 0.0, 1.0)
        return np.clip(image.astype(np.float32) * factor[None, :, None], 0, 255).astype(np.uint8)


def _source_frames(source: Path) -> Iterator[tuple[int, np.ndarray]]:
    with av.open(str(source)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            yield index, frame.to_ndarray(format="bgr24")


def write_clip(
    out: Path,
    segments: Sequence[Segment],
    effects: Sequence[Effect] = (),
    *,
    source: Path = CAR_CLIP,
    fps: Fraction = Fraction(25, 2),
) -> float:
    """Write the timeline (H.264 MP4) once; return its duration in seconds."""
    duration = 0.0
    for seg in segments:
        duration += (seg.last - seg.first + 1) / float(fps) if isinstance(seg, Play) else seg.seconds
    if out.exists():
        return duration
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part.mp4")
    frames = _source_frames(source)
    current: tuple[int, np.ndarray] | None = None

    def frame_at(index: int) -> np.ndarray:
        nonlocal current
        while current is None or current[0] < index:
            current = next(frames)
        if current[0] != index:
            raise ValueError(f"segments go back in the source (frame {index} after {current[0]})")
        return current[1]

    with av.open(str(tmp), mode="w") as dst:
        stream = dst.add_stream("libx264", rate=fps)
        first = frame_at(segments[0].first if isinstance(segments[0], Play) else segments[0].index)
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23", "g": str(int(round(float(fps) * 2)))}
        k = 0
        for seg in segments:
            if isinstance(seg, Play):
                indices: Iterator[int] = iter(range(seg.first, seg.last + 1))
            else:
                indices = iter([seg.index] * int(round(seg.seconds * float(fps))))
            for index in indices:
                image = frame_at(index)
                t = k / float(fps)
                for effect in effects:
                    image = effect(image, t)
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
                frame = frame.reformat(format="yuv420p")
                frame.pts = k
                frame.time_base = 1 / fps
                k += 1
                for packet in stream.encode(frame):
                    dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    tmp.rename(out)
    return duration


@dataclass(frozen=True)
class Goods:
    """A pile of cardboard boxes put down over ``box`` (normalised xyxy) at ``start`` and taken
    away at ``end``: the market-stall case, something no detector class fits."""

    box: tuple[float, float, float, float]
    start: float
    end: float = float("inf")

    def __call__(self, image: np.ndarray, t: float) -> np.ndarray:
        if not self.start <= t < self.end:
            return image
        h, w = image.shape[:2]
        x0, y0, x1, y1 = (int(round(v * s)) for v, s in zip(self.box, (w, h, w, h), strict=True))
        out = image.copy()
        out[y0:y1, x0:x1] = (60, 110, 160)  # cardboard brown (BGR)
        bw, bh = max((x1 - x0) // 2, 2), max((y1 - y0) // 2, 2)
        for by in range(y0, y1, bh):  # four boxes with dark seams and a lighter tape strip
            for bx in range(x0, x1, bw):
                out[by : min(by + bh, y1), bx : min(bx + 2, x1)] = (30, 55, 80)
                out[by : min(by + 2, y1), bx : min(bx + bw, x1)] = (30, 55, 80)
                mid = bx + bw // 2
                out[by : min(by + bh, y1), mid - 2 : mid + 2] = (150, 190, 215)
        return out
