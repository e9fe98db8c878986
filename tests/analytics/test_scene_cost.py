"""The scene model is cheap: it resizes a frame only when it learns or a rule asks, learns at
most once a second of media time, and shares one resize per frame with the motion gate and the
static-object path. None of that may change what it answers.

Pictures are the rendered street of :mod:`.test_occlusion` (1280x720, a car as a coloured block);
"work" is counted as calls of the function that hands the model its downscaled frame.
"""

from __future__ import annotations

import numpy as np
import pytest

from gridwarden.edge.analytics import gate as gate_module
from gridwarden.edge.analytics.camera_analytics import CameraAnalytics
from gridwarden.edge.analytics.gate import DownscaleCache, MotionGate, downscale
from gridwarden.edge.analytics.rules import scene as scene_module
from gridwarden.edge.analytics.rules import static_objects as static_module
from gridwarden.edge.analytics.rules.scene import SceneModel
from gridwarden.edge.analytics.rules.static_objects import StaticForegroundDetector
from gridwarden.edge.config import load_edge_config_text
from gridwarden.edge.types import Frame

from .scenes import CAR_BOX
from .test_occlusion import RED, WHITE, draw, panel, road

OTHER_PLACE = np.array([900, 420, 1200, 640])


class CountingSmall:
    """The downscaled frame, with a count of how often the model asked for it."""

    def __init__(self, image: np.ndarray, width: int = 160) -> None:
        self.small = downscale(image, width)
        self.calls = 0

    def __call__(self) -> np.ndarray:
        self.calls += 1
        return self.small


def test_frames_between_updates_cost_nothing_until_a_rule_asks() -> None:
    """2 fps for 10 s: the background learns at 0, 1, 2, ... s (11 resizes), the half-second
    frames in between resize nothing; asking one of them resizes it once, however often asked."""
    image = road()
    model = SceneModel(update_s=1.0)
    calls = []
    for i in range(21):
        small = CountingSmall(image)
        model.update(image, i * 0.5, small)
        calls.append(small.calls)
    assert calls == [1 if i % 2 == 0 else 0 for i in range(21)]

    car = draw(image, CAR_BOX, RED)
    small = CountingSmall(car)
    view = model.update(car, 10.25, small)
    assert small.calls == 0
    assert view.foreground_fraction(CAR_BOX) == pytest.approx(1.0)
    assert view.foreground_fraction(OTHER_PLACE) == pytest.approx(0.0)
    view.signature(CAR_BOX)
    assert small.calls == 1


def test_learning_once_a_second_answers_as_learning_every_frame() -> None:
    """A car parks for 40 s, a lorry's panel hides it for 20 s, then the place is empty: every
    frame, a model learning once a second and one learning every frame see the same places
    (foreground fractions within 0.02) and the same signatures."""
    base = road()
    every, once = SceneModel(update_s=0.0), SceneModel(update_s=1.0)
    for i in range(int(80 / 0.25)):
        t = i * 0.25
        if t < 5:
            image = base
        elif t < 45:
            image = draw(base, CAR_BOX, WHITE)
        elif t < 65:
            image = panel(base)
        else:
            image = base
        a, b = every.update(image, t), once.update(image, t)
        for box in (CAR_BOX, OTHER_PLACE):
            assert a.foreground_fraction(box) == pytest.approx(b.foreground_fraction(box), abs=0.02), t
        np.testing.assert_allclose(a.signature(CAR_BOX), b.signature(CAR_BOX), atol=1e-9)


def test_a_view_keeps_the_background_it_was_made_against() -> None:
    """The model learns into a new array: a view handed out earlier answers as it did when made,
    even after later frames were learnt (rules may look at it after the model moved on)."""
    base = road()
    model = SceneModel(update_s=1.0, background_s=1.0, absorb_s=1.0)
    model.update(base, 0.0)
    car = draw(base, CAR_BOX, RED)
    view = model.update(car, 0.5)  # between updates: computes nothing until asked
    for i in range(1, 20):
        model.update(car, float(i))  # the car becomes background quickly
    assert model.update(car, 20.0).foreground_fraction(CAR_BOX) == pytest.approx(0.0)
    assert view.foreground_fraction(CAR_BOX) == pytest.approx(1.0)


def test_shared_small_frame_gives_the_same_answers() -> None:
    """Gate and static-object path fed the cache's small frame decide exactly as when they resize
    the frame themselves; a small frame of the wrong size is refused."""
    base = road()
    frames = [(i * 0.5, base if i < 4 or i > 30 else draw(base, CAR_BOX, RED)) for i in range(40)]
    own_gate, shared_gate = MotionGate(max_skip_s=3.0), MotionGate(max_skip_s=3.0)
    own_static = StaticForegroundDetector(min_static_s=3.0)
    shared_static = StaticForegroundDetector(min_static_s=3.0)
    cache = DownscaleCache()
    decisions, found = [], 0
    for t, image in frames:
        small = cache.get(image, 160)
        assert cache.get(image, 160) is small
        own, shared = own_gate.should_detect(image, t), shared_gate.should_detect(image, t, small)
        assert own == shared, t
        decisions.append(own)
        a, b = own_static.update(image, t), shared_static.update(image, t, small)
        np.testing.assert_array_equal(a.xyxy, b.xyxy)
        found += len(a)
    assert True in decisions[1:] and False in decisions  # the gate both fired and skipped
    assert found > 0  # and the static path found the car
    with pytest.raises(ValueError, match="small must be 160x90"):
        shared_gate.should_detect(base, 30.0, downscale(base, 120))
    with pytest.raises(ValueError, match="small must be 160x90"):
        SceneModel().update(base, 0.0, downscale(base, 120))


def test_camera_analytics_resizes_each_frame_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A camera with the motion gate, a parking rule and a static-object rule: one 160 px resize
    per frame shared by all three, none kept alive after the frame."""
    cfg = load_edge_config_text(
        """
edge_id: e
model: {path: /nonexistent.onnx}
cameras:
  - id: cam
    url: file.mp4
    zones:
      - id: kerb
        polygon: [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]
        rules:
          - {type: illegal_parking, classes: [car], dwell_s: 30}
          - {type: static_object, dwell_s: 30, min_static_s: 5}
"""
    )
    analytics = CameraAnalytics(cfg.cameras[0], cfg, ["person", "bicycle", "car"])
    assert analytics.gate is not None and analytics.static_detector is not None
    resized = []
    real = gate_module.downscale

    def counting(image: np.ndarray, width: int) -> np.ndarray:
        if image.shape[1] != width:  # a frame already at the width is handed back as it is
            resized.append(width)
        return real(image, width)

    for module in (gate_module, scene_module, static_module):
        monkeypatch.setattr(module, "downscale", counting)
    base = road()
    gated = 0
    for i in range(10):
        image = base if i < 3 else draw(base, CAR_BOX, RED)
        frame = Frame(camera_id="cam", image=image, media_time=i * 0.5, wall_time=1000.0 + i * 0.5)
        gated += not analytics.wants_detection(frame)
        result = analytics.process(frame, None)
        assert analytics._smalls._image is None  # the frame is let go after processing
        assert result.frame is frame
    assert gated > 0  # the gate did skip frames: the shared resize served the other consumers
    assert resized == [160] * 10
