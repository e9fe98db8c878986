"""A synthetic street camera: the no-camera demo and the ground truth for static-object tests.

Real footage with an object that arrives and then stays for minutes is hard to come by, so this
module draws one: a fixed street (facade, pavement, kerb, road with lane markings) seen by a
slightly noisy camera whose exposure drifts a little, cars passing in both lanes, a pedestrian
walking along the pavement in front of the spot, and a market stall that is set up at
``arrive_s`` and packed away at ``leave_s``. Everything is drawn with OpenCV on a background that
is rendered once, so a frame costs about a millisecond at 640x360.

The stall's position is known exactly (:func:`stall_box`), which makes the scene a test oracle.

Example::

    >>> frames = make_street_scene(320, 180, fps=2, duration_s=3, arrive_s=1, leave_s=2, seed=0)
    >>> t, image = next(frames)
    >>> (t, image.shape, image.dtype.name)
    (0.0, (180, 320, 3), 'uint8')
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

# Where the stall stands, as fractions of the frame (x1, y1, x2, y2): on the pavement against the
# kerb, where a trader would set up.
STALL_BOX_NORMALISED = (0.56, 0.13, 0.74, 0.33)

# Vertical layout of the street, as fractions of the frame height.
_FACADE_END = 0.14
_KERB_NEAR = 0.32
_CENTRE_LINE = 0.61
_KERB_FAR = 0.88
_CAR_SPEED_W_PER_S = 0.22  # frame widths per second: ~4.5 s to cross
_PEDESTRIAN_SPEED_W_PER_S = 0.05
_NOISE_SIGMA = 3.0
_EXPOSURE_DRIFT = 0.03  # +-3 % gain, slow sine


def stall_box(width: int, height: int) -> tuple[float, float, float, float]:
    """The stall's box in pixel coordinates (x1, y1, x2, y2) for a frame of this size."""
    x1, y1, x2, y2 = STALL_BOX_NORMALISED
    return (x1 * width, y1 * height, x2 * width, y2 * height)


@dataclass(frozen=True, slots=True)
class _Car:
    start_s: float
    lane_y: float  # centre line of the car, fraction of height
    direction: int  # +1 left to right, -1 right to left
    colour: tuple[int, int, int]
    length: float  # fraction of width


def _schedule_cars(rng: np.random.Generator, duration_s: float) -> list[_Car]:
    """A car every 6-14 s, alternating lanes, so some frames are empty and some are busy."""
    palette = [(40, 40, 170), (170, 170, 175), (30, 30, 30), (160, 90, 30), (220, 220, 225), (40, 120, 60)]
    cars: list[_Car] = []
    t = float(rng.uniform(0.5, 4.0))
    while t < duration_s:
        lower = len(cars) % 2 == 0
        cars.append(
            _Car(
                start_s=t,
                lane_y=(_CENTRE_LINE + _KERB_FAR) / 2 if lower else (_KERB_NEAR + _CENTRE_LINE) / 2 + 0.02,
                direction=1 if lower else -1,
                colour=palette[int(rng.integers(len(palette)))],
                length=float(rng.uniform(0.14, 0.2)),
            )
        )
        t += float(rng.uniform(6.0, 14.0))
    return cars


def _render_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """The empty street, drawn once: texture is fixed so that only noise changes between frames."""
    img = np.empty((height, width, 3), np.float32)
    y_facade, y_kerb, y_centre, y_far = (
        int(f * height) for f in (_FACADE_END, _KERB_NEAR, _CENTRE_LINE, _KERB_FAR)
    )

    img[:y_facade] = (70, 95, 150)  # brick facade, BGR
    img[y_facade:y_kerb] = (165, 168, 170)  # pavement
    img[y_kerb:y_far] = (72, 74, 76)  # asphalt
    img[y_far:] = (160, 163, 166)
    # Large-scale blotches (repairs, wear) and fine grain, so the road is not a flat field.
    blotches = cv2.resize(rng.normal(0, 9, (max(2, height // 40), max(2, width // 40))), (width, height))
    grain = cv2.GaussianBlur(rng.normal(0, 7, (height, width)), (0, 0), 0.8)
    img += (blotches + grain)[..., None]
    out = np.clip(img, 0, 255).astype(np.uint8)

    # Facade windows and door.
    step = max(8, width // 9)
    for x in range(step // 3, width - step // 2, step):
        cv2.rectangle(out, (x, int(0.02 * height)), (x + step // 2, int(0.10 * height)), (60, 50, 45), -1)
        cv2.rectangle(out, (x, int(0.02 * height)), (x + step // 2, int(0.10 * height)), (200, 200, 200), 1)
    # Paving slab joints.
    slab = max(6, width // 24)
    for x in range(0, width, slab):
        cv2.line(out, (x, y_facade), (x, y_kerb), (140, 142, 144), 1)
        cv2.line(out, (x, y_far), (x, height), (138, 140, 142), 1)
    cv2.line(out, (0, (y_facade + y_kerb) // 2), (width, (y_facade + y_kerb) // 2), (140, 142, 144), 1)
    # Kerbs: a bright stone edge with a shadow on the road side.
    thick = max(2, height // 90)
    cv2.line(out, (0, y_kerb), (width, y_kerb), (205, 205, 205), thick)
    cv2.line(out, (0, y_kerb + thick), (width, y_kerb + thick), (45, 45, 48), thick)
    cv2.line(out, (0, y_far), (width, y_far), (205, 205, 205), thick)
    # Dashed centre line, parking-lane line and bay marks near the kerb.
    dash = max(6, width // 16)
    for x in range(0, width, 2 * dash):
        cv2.line(out, (x, y_centre), (x + dash, y_centre), (225, 225, 225), thick)
    y_bay = y_kerb + int(0.09 * height)
    cv2.line(out, (0, y_bay), (width, y_bay), (215, 215, 215), max(1, thick // 2))
    for x in range(0, width, max(12, width // 6)):
        cv2.line(out, (x, y_kerb + thick), (x, y_bay), (215, 215, 215), max(1, thick // 2))
    # A lamp post and a bin: fixed clutter that must never be reported.
    px = int(0.2 * width)
    cv2.line(out, (px, y_facade), (px, y_kerb - thick), (50, 50, 50), max(2, width // 200))
    cv2.rectangle(
        out, (int(0.9 * width), int(0.2 * height)), (int(0.94 * width), int(0.29 * height)), (40, 90, 40), -1
    )
    return out


def _draw_car(img: np.ndarray, car: _Car, t: float) -> None:
    w, h = img.shape[1], img.shape[0]
    travelled = (t - car.start_s) * _CAR_SPEED_W_PER_S
    length = car.length
    x_front = -length + travelled if car.direction > 0 else 1.0 - travelled
    x1, x2 = int(x_front * w), int((x_front + length) * w)
    half = int(0.075 * h)
    yc = int(car.lane_y * h)
    if x2 < 0 or x1 > w:
        return
    cv2.rectangle(img, (x1 + 3, yc - half + 4), (x2 + 3, yc + half + 4), (35, 35, 38), -1)  # shadow
    cv2.rectangle(img, (x1, yc - half), (x2, yc + half), car.colour, -1)
    roof = (int(x1 + 0.3 * (x2 - x1)), yc - half + 3, int(x1 + 0.75 * (x2 - x1)), yc + half - 3)
    cv2.rectangle(img, roof[:2], roof[2:], tuple(int(c * 0.8) for c in car.colour), -1)
    glass = (50, 40, 35)
    ws = int(0.08 * (x2 - x1))
    front_x = roof[2] if car.direction > 0 else roof[0] - ws
    rear_x = roof[0] - ws if car.direction > 0 else roof[2]
    cv2.rectangle(img, (front_x, roof[1]), (front_x + ws, roof[3]), glass, -1)
    cv2.rectangle(img, (rear_x, roof[1]), (rear_x + ws, roof[3]), glass, -1)


def _draw_stall(img: np.ndarray) -> None:
    w, h = img.shape[1], img.shape[0]
    x1, y1, x2, y2 = (int(v) for v in stall_box(w, h))
    awning_end = y1 + (y2 - y1) * 2 // 5
    cv2.rectangle(img, (x1, awning_end), (x2, y2), (60, 110, 150), -1)  # wooden counter
    stripe = max(3, (x2 - x1) // 8)
    for i, x in enumerate(range(x1, x2, stripe)):
        colour = (40, 40, 200) if i % 2 == 0 else (235, 235, 235)
        cv2.rectangle(img, (x, y1), (min(x + stripe, x2), awning_end), colour, -1)
    # Goods on the counter: crates of fruit.
    crate = max(4, (x2 - x1) // 5)
    for i, colour in enumerate([(30, 140, 230), (40, 180, 60), (40, 40, 190), (20, 200, 220)]):
        cx = x1 + 2 + i * (crate + 2)
        if cx + crate <= x2:
            cv2.rectangle(img, (cx, awning_end + 3), (cx + crate, awning_end + 3 + crate // 2), colour, -1)


def _draw_pedestrian(img: np.ndarray, t: float) -> None:
    """Walks back and forth along the pavement, passing in front of the stall."""
    w, h = img.shape[1], img.shape[0]
    period = 2.0 / _PEDESTRIAN_SPEED_W_PER_S
    phase = (t % period) / period
    x = (phase * 2 if phase < 0.5 else 2 - phase * 2) * 1.1 - 0.05
    xc, y_feet = int(x * w), int(0.30 * h)
    body_h, body_w = int(0.13 * h), max(3, int(0.018 * w))
    cv2.rectangle(img, (xc - body_w, y_feet - body_h), (xc + body_w, y_feet), (90, 40, 40), -1)
    cv2.circle(img, (xc, y_feet - body_h - body_w), body_w, (120, 150, 190), -1)


def make_street_scene(
    width: int = 640,
    height: int = 360,
    fps: float = 5.0,
    duration_s: float = 120.0,
    arrive_s: float = 20.0,
    leave_s: float = 90.0,
    seed: int = 0,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(media_time, BGR image)`` for a street in which a stall arrives and later leaves.

    ``arrive_s`` <= t < ``leave_s``: the stall is in view (see :func:`stall_box`). Cars pass every
    6-14 s (seeded), a pedestrian walks the pavement, the sensor adds Gaussian noise (sigma 3) and
    the exposure drifts by +-3 % over 40 s, so static-object logic meets the nuisances it must
    ignore. Pass ``leave_s=float("inf")`` for a stall that never leaves.
    """
    if width < 64 or height < 36:
        raise ValueError(f"scene must be at least 64x36, got {width}x{height}")
    if fps <= 0 or duration_s <= 0:
        raise ValueError("fps and duration_s must be positive")
    rng = np.random.default_rng(seed)
    background = _render_background(width, height, rng)
    cars = _schedule_cars(rng, duration_s)
    # Sensor noise from a seeded bank of planes, each frame a randomly offset window of one:
    # deterministic per seed, and ~10x cheaper than drawing fresh Gaussian noise every frame.
    pad = 16
    bank = rng.normal(0, _NOISE_SIGMA, (4, height + pad, width + pad, 3)).astype(np.int16)
    for i in range(int(round(duration_s * fps))):
        t = i / fps
        frame = background.copy()
        for car in cars:
            if car.start_s <= t:
                _draw_car(frame, car, t)
        if arrive_s <= t < leave_s:
            _draw_stall(frame)
        _draw_pedestrian(frame, t)
        gain = 1.0 + _EXPOSURE_DRIFT * np.sin(2 * np.pi * t / 40.0)
        k, dy, dx = rng.integers(len(bank)), rng.integers(pad), rng.integers(pad)
        noise = bank[k, dy : dy + height, dx : dx + width]
        frame = cv2.add(cv2.convertScaleAbs(frame, alpha=gain), noise, dtype=cv2.CV_8U)
        yield t, frame
