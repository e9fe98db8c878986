"""The edge runner's analysis step with region inference: per camera its own choice (zone crops
or whole frame), every camera's model inputs in one detector call, boxes in frame pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gridwarden.edge.analytics.detector import resolve_classes
from gridwarden.edge.analytics.model_loader import build_detector
from gridwarden.edge.config import load_edge_config_text
from gridwarden.edge.runner import EdgeRunner
from gridwarden.edge.types import Frame
from tests.detector.onnx_builders import make_batch_dynamic
from tests.support.paths import YOLOX_NANO
from tests.support.small_objects import SMALL_PARKING_ZONE, background, compose, read_clip_frames

ZONE = [[round(x, 4), round(y, 4)] for x, y in SMALL_PARKING_ZONE]
CONFIG = """\
edge_id: edge-test
model: {path: MODEL, input_size: 416}
class_groups: {overhead_vehicle: [car, bus, truck, cell phone]}
cameras:
""" + "".join(
    f"""\
  - id: {cam}
    url: /nonexistent/{cam}.mp4
    inference: {mode}
    motion_gate: {{enabled: false}}
    zones:
      - id: no-parking
        polygon: {ZONE}
        rules: [{{type: illegal_parking, classes: [overhead_vehicle], dwell_s: 60}}]
"""
    for cam, mode in (("cam-auto", "auto"), ("cam-whole", "whole"))
)


def test_runner_detects_small_car_on_zone_crops_in_one_call_for_all_cameras(tmp_path: Path) -> None:
    # yolox_nano with a dynamic batch dimension, so the runner hands all cameras over at once
    model = make_batch_dynamic(YOLOX_NANO, tmp_path / "yolox_dynamic.onnx")
    cfg = load_edge_config_text(CONFIG.replace("MODEL", str(model)))
    detector = build_detector(cfg)
    assert detector is not None
    calls: list[int] = []
    original = detector.detect

    def counting(images):  # type: ignore[no-untyped-def]
        calls.append(len(images))
        return original(images)

    detector.detect = counting  # type: ignore[method-assign]
    runner = EdgeRunner(cfg, detector=detector, sink=lambda event: None)  # built, never started
    image = compose(read_clip_frames((76,))[76], background())  # the white car, small, in its zone
    results = {}
    for step in range(3):
        t = step * 0.5
        frames = [Frame(cam, image, t, 1000.0 + t, step) for cam in ("cam-auto", "cam-whole")]
        results = {r.frame.camera_id: r for r in runner.analyse(frames)}
    assert calls == [2, 2, 2]  # one canvas for the zone camera + one whole frame, together
    assert detector.batch_stats == (3, 6)  # ... in one session run each
    auto, whole = results["cam-auto"], results["cam-whole"]
    assert auto.regions is not None and whole.regions is None
    vehicle_ids = list(resolve_classes(["car", "bus", "truck", "cell phone"], detector.class_names) or [])
    auto_cars = auto.tracks[np.isin(auto.tracks.class_id, vehicle_ids)]
    whole_cars = whole.tracks[np.isin(whole.tracks.class_id, vehicle_ids)]
    assert len(auto_cars) == 1 and len(whole_cars) == 0
    # the car's box, in 1080p frame pixels (read off the composed frame: x 1686-1751, y 909-1010)
    np.testing.assert_allclose(auto_cars.xyxy[0], [1686, 911, 1751, 1011], atol=6)
