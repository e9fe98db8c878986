"""StaticForegroundDetector guarantees that a mutation of static_objects.py must break
(issue 12 item 14). Synthetic 160x90 frames (the analysis size, so nothing is resized): a
textured street with sensor noise, and a coloured stall of known contrast.

Each test names the mutation in ``bench/mutation_check.py`` that turns it red.
"""

from __future__ import annotations

import numpy as np

from gridwarden.edge.analytics.rules.static_objects import StaticForegroundDetector

W, H = 160, 90
STALL = (slice(40, 65), slice(60, 100))  # rows, columns: 25 x 40 px
BACKGROUND = np.random.default_rng(7).integers(80, 120, (H, W, 3)).astype(np.int16)


def frame(
    rng: np.random.Generator, *, stall: tuple[int, int, int] | None = None, brightness: int = 0
) -> np.ndarray:
    """The street (+ brightness, + up to 2 levels of noise), with a flat stall when given."""
    image = BACKGROUND + brightness + rng.integers(-2, 3, (H, W, 3))
    if stall is not None:
        image[STALL] = np.asarray(stall, dtype=np.int16) + brightness
    return np.clip(image, 0, 255).astype(np.uint8)


def test_stall_of_known_contrast_is_still_reported_after_an_hour_at_low_fps() -> None:
    # Mutation "static: absorbed at the background rate". Contrast 100 against a threshold of
    # 25 stays for absorb_s * ln(100 / 25) = 83 min; one frame every 5 s for 65 minutes.
    rng = np.random.default_rng(1)
    detector = StaticForegroundDetector(width=W, min_static_s=10.0)
    stall = (200, 200, 110)  # ~100 above the street in blue and green
    reported: dict[float, int] = {}
    for i in range(int(65 * 60 / 5)):
        t = 5.0 * i
        boxes = detector.update(frame(rng, stall=stall if t >= 60.0 else None), t)
        reported[t] = len(boxes)
    assert all(n == 0 for t, n in reported.items() if t < 60.0)
    stood = [t for t in reported if t >= 60.0 + 15.0]
    assert all(reported[t] == 1 for t in stood), [t for t in stood if reported[t] != 1][:3]
    box = detector.update(frame(rng, stall=stall), 65 * 60.0)
    assert len(box) == 1
    assert np.allclose(box.xyxy[0], [60, 40, 100, 65], atol=2)
    assert detector.last_ages[0] > 60 * 60.0


def test_global_brightness_change_is_not_an_object() -> None:
    # Mutation "static: no global brightness offset". Lights on / a cloud: every pixel +40 at once,
    # for a minute (nothing absorbs it that fast: the background follows with 600 s).
    rng = np.random.default_rng(2)
    detector = StaticForegroundDetector(width=W, min_static_s=10.0)
    for i in range(240):
        t = 0.5 * i
        boxes = detector.update(frame(rng, brightness=40 if t >= 30.0 else 0), t)
        assert len(boxes) == 0, t


def test_region_that_keeps_changing_is_not_static() -> None:
    # Mutation "static: stillness not required". A screen or flag that flips between two colours
    # far from the street and from each other every frame is foreground all the time, old
    # enough, but never still: not a static object.
    rng = np.random.default_rng(3)
    detector = StaticForegroundDetector(width=W, min_static_s=10.0)
    colours = [(230, 30, 30), (30, 230, 30)]
    for i in range(120):
        t = 0.5 * i
        assert len(detector.update(frame(rng, stall=colours[i % 2] if t >= 5.0 else None), t)) == 0, t
    # The same region, once it stops changing, is reported after the stillness settles.
    seen = [t for t in np.arange(60.0, 90.0, 0.5) if len(detector.update(frame(rng, stall=colours[0]), t))]
    assert seen and seen[0] <= 75.0


def test_long_gap_in_the_stream_does_not_add_its_length_to_the_age() -> None:
    # Mutation "static: gap counted as age". The stall arrives at 2 s; the stream is gone from 4 s
    # to 1000 s (camera offline). The stall was seen for 2 s and the gap counts as at most 5 s, so
    # it is not static on the first frame after the gap, and its reported age is small.
    rng = np.random.default_rng(4)
    stall = (200, 200, 110)
    detector = StaticForegroundDetector(width=W, min_static_s=10.0)
    for t in np.arange(0.0, 4.0, 0.5):
        detector.update(frame(rng, stall=stall if t >= 2.0 else None), float(t))
    assert len(detector.update(frame(rng, stall=stall), 1000.0)) == 0
    first = None
    for t in np.arange(1000.5, 1010.0, 0.5):
        if len(detector.update(frame(rng, stall=stall), float(t))):
            first = float(t)
            break
    assert first is not None and 1001.0 <= first <= 1004.0
    assert detector.last_ages[0] < 15.0
