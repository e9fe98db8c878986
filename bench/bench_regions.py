"""Region inference vs whole-frame inference on a 1080p street view with two zones.

The scene is tests/support/small_objects.py: car-detection.mp4 shrunk into the bottom-right
corner of a 1920x1080 canvas (cars about 65x105 px, a bicycle's size across a street), with two
zones: the small parking zone around the cars and a pavement strip on the left watched for
``non_motor``. Both modes run the same frames through the same yolox_nano session:

* ``whole``: the frame letterboxed into 416x416 (what the edge did before);
* ``zones``: ``inference: auto`` with the default one model input per frame: zone crops packed
  onto one canvas, plus motion crops in its free space; planning and motion cost included.

Printed: CPU seconds (all threads of the process) per analysed frame for each, their ratio
(target: at most 1.5x), and the recall of the cars standing in the parking zone (truth: the
same detector on the full-size clip, score >= 0.5, bottom-centre in the zone; a hit is a box of
an overhead-vehicle class with IoU >= 0.5). The two modes alternate in rounds so that load from
other work on the machine falls on both alike. Run::

    .venv/bin/python bench/bench_regions.py --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gridwarden.edge.analytics.detector import Detector, resolve_classes  # noqa: E402
from gridwarden.edge.analytics.detector.mosaic import detect_frames  # noqa: E402
from gridwarden.edge.analytics.detector.regions import CameraRegions, WatchedZone  # noqa: E402
from gridwarden.edge.analytics.zones import Zone  # noqa: E402
from gridwarden.edge.types import Detections  # noqa: E402
from tests.support.paths import YOLOX_NANO  # noqa: E402
from tests.support.small_objects import (  # noqa: E402
    CANVAS_SIZE,
    PAVEMENT_ZONE,
    SMALL_PARKING_ZONE,
    background,
    clip_box_to_canvas,
    compose,
    read_clip_frames,
)

OVERHEAD_VEHICLE = ["car", "bus", "truck", "cell phone"]


def iou_hit(truth: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Per true box: is some found box at IoU >= 0.5?"""
    if not len(found):
        return np.zeros(len(truth), bool)
    ix = np.clip(
        np.minimum(truth[:, None, 2], found[None, :, 2]) - np.maximum(truth[:, None, 0], found[None, :, 0]),
        0,
        None,
    )
    iy = np.clip(
        np.minimum(truth[:, None, 3], found[None, :, 3]) - np.maximum(truth[:, None, 1], found[None, :, 1]),
        0,
        None,
    )
    inter = ix * iy
    area_t = (truth[:, 2] - truth[:, 0]) * (truth[:, 3] - truth[:, 1])
    area_f = (found[:, 2] - found[:, 0]) * (found[:, 3] - found[:, 1])
    return (inter / (area_t[:, None] + area_f[None, :] - inter) >= 0.5).any(axis=1)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating whole/zones rounds")
    parser.add_argument("--first", type=int, default=60, help="first frame of car-detection.mp4")
    parser.add_argument("--last", type=int, default=340, help="last frame")
    parser.add_argument(
        "--step", type=int, default=5, help="clip frames between analysed frames (12.5 fps / 5 = 2.5 fps)"
    )
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    args = parser.parse_args()

    detector = Detector(YOLOX_NANO, intra_op_threads=args.threads)
    ids = list(resolve_classes(OVERHEAD_VEHICLE, detector.class_names) or [])
    zone = Zone("small", [(x, y) for x, y in SMALL_PARKING_ZONE])
    back = background()
    clip = read_clip_frames(tuple(range(args.first, args.last + 1, args.step)))
    images, truths = [], []
    for frame in clip.values():
        truth = detector.detect_one(frame)
        truth = truth[np.isin(truth.class_id, ids) & (truth.confidence >= 0.5)]
        boxes = Detections(clip_box_to_canvas(truth.xyxy), truth.confidence, truth.class_id)
        images.append(compose(frame, back))
        truths.append(boxes[zone.contains(boxes, CANVAS_SIZE)].xyxy)

    def regions() -> CameraRegions:
        return CameraRegions(
            [
                WatchedZone(SMALL_PARKING_ZONE, "bottom_center", tuple(OVERHEAD_VEHICLE)),
                WatchedZone(PAVEMENT_ZONE, "bottom_center", ("bicycle", "motorcycle")),
            ],
            mode="auto",
        )

    def run(mode: str) -> tuple[float, int, int]:
        camera = regions()
        hits = total = 0
        start = time.process_time()
        for image, truth in zip(images, truths, strict=True):
            plan = camera.plan(image, detector.input_size) if mode == "zones" else None
            found = detect_frames(detector, [image], [plan])[0]
            found = found[np.isin(found.class_id, ids)]
            hits += int(iou_hit(truth, found.xyxy).sum())
            total += len(truth)
        return (time.process_time() - start) / len(images), hits, total

    plan = regions().base_plan(CANVAS_SIZE, detector.input_size)
    assert plan is not None, "auto should choose zones for this camera"
    print(
        f"frames: {len(images)} analysed frames of 1920x1080, {sum(len(t) for t in truths)} cars in the zone"
    )
    print(
        f"plan: {plan.canvases} model input(s); crops "
        + ", ".join(f"{p.box} x{p.scale:.2f}" for p in plan.placements)
        + f"; whole frame is x{min(416 / 1920, 416 / 1080):.3f}"
    )
    run("whole"), run("zones")  # warm both paths
    cpu: dict[str, list[float]] = {"whole": [], "zones": []}
    recall: dict[str, tuple[int, int]] = {}
    for r in range(args.rounds):
        for mode in ("whole", "zones") if r % 2 == 0 else ("zones", "whole"):
            per_frame, hits, total = run(mode)
            cpu[mode].append(per_frame)
            recall[mode] = (hits, total)
    whole_ms = statistics.median(cpu["whole"]) * 1000
    zones_ms = statistics.median(cpu["zones"]) * 1000
    print(f"{'mode':<6} {'CPU ms/frame (median of rounds)':>32} {'rounds':>28} {'recall':>12}")
    for mode, ms in (("whole", whole_ms), ("zones", zones_ms)):
        hits, total = recall[mode]
        rounds = " ".join(f"{v * 1000:.1f}" for v in cpu[mode])
        print(f"{mode:<6} {ms:>32.1f} {rounds:>28} {hits:>5}/{total:<3} {hits / max(total, 1):.0%}")
    ratio = zones_ms / whole_ms
    print(f"CPU ratio zones/whole: {ratio:.2f}x (target <= 1.5x): {'OK' if ratio <= 1.5 else 'OVER'}")


if __name__ == "__main__":
    main()
