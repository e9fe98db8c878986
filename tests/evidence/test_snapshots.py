"""Snapshots of a real frame: two valid JPEGs, the annotated one differing where it should."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from gridwarden.edge.capture.evidence import write_snapshots
from tests.support.paths import CAR_CLIP
from tests.support.scenarios import HOLD_FRAME, PARKING_ZONE

CAR_BOX = (0.34, 0.28, 0.56, 0.88)  # the white car at frame 76 (tests/support/scenarios.py)


@pytest.fixture(scope="module")
def car_frame() -> np.ndarray:
    with av.open(str(CAR_CLIP)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index == HOLD_FRAME:
                return frame.to_ndarray(format="bgr24")
    raise AssertionError("clip too short")


def _decode(path: Path) -> np.ndarray:
    data = path.read_bytes()
    assert data[:3] == b"\xff\xd8\xff" and data[-2:] == b"\xff\xd9"  # JPEG SOI ... EOI
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_clean_and_annotated_jpegs(car_frame: np.ndarray, tmp_path: Path) -> None:
    before = car_frame.copy()
    clean, annotated = write_snapshots(
        car_frame,
        zone_polygon=PARKING_ZONE,
        box=CAR_BOX,
        class_name="car",
        dwell_s=95.0,
        out_dir=tmp_path,
        incident_id="inc-7",
        media_time=6.08,
    )
    assert np.array_equal(car_frame, before), "the caller's frame must not be drawn on"
    assert (clean.kind, annotated.kind) == ("snapshot", "snapshot_annotated")
    assert clean.path.name == "inc-7_snapshot.jpg" and annotated.path.name == "inc-7_snapshot_annotated.jpg"
    for evidence in (clean, annotated):
        assert evidence.content_type == "image/jpeg"
        assert evidence.sha256 == hashlib.sha256(evidence.path.read_bytes()).hexdigest()
        assert evidence.size == evidence.path.stat().st_size
        assert evidence.media_start == evidence.media_end == 6.08
        assert evidence.ref().kind == evidence.kind
    assert clean.sha256 != annotated.sha256

    clean_img, drawn_img = _decode(clean.path), _decode(annotated.path)
    assert clean_img.shape == drawn_img.shape == car_frame.shape
    # The clean JPEG is the frame (only compression error).
    assert np.abs(clean_img.astype(int) - car_frame.astype(int)).mean() < 4.0

    h, w = car_frame.shape[:2]
    changed = np.abs(drawn_img.astype(int) - clean_img.astype(int)).max(axis=2) > 40
    # The zone's outline and fill, the box and the label change the picture...
    zone = np.zeros((h, w), np.uint8)
    cv2.fillPoly(zone, [np.rint(np.array(PARKING_ZONE) * [w - 1, h - 1]).astype(np.int32)], 1)
    x1, y1, x2, y2 = (np.array(CAR_BOX) * [w - 1, h - 1, w - 1, h - 1]).round().astype(int)
    near_box = np.zeros((h, w), bool)
    near_box[max(y1 - 30, 0) : y2 + 5, max(x1 - 5, 0) : x2 + 60] = True
    assert changed[zone.astype(bool)].mean() > 0.05
    assert changed[y1 + 2 : y2 - 2, x1 - 1 : x1 + 2].mean() > 0.5  # the box's left edge
    # ...and nothing far from them does.
    far = ~(near_box | cv2.dilate(zone, np.ones((7, 7), np.uint8)).astype(bool))
    assert changed[far].mean() < 0.001


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"box": (0.1, 0.2, 1.5, 0.9)}, "normalised"),
        ({"box": (0.1, 0.2)}, "box"),
        ({"zone_polygon": [[0.1, 0.1], [0.2, 0.2]]}, "zone_polygon"),
        ({"incident_id": "../../etc/passwd"}, "incident id"),
    ],
)
def test_bad_input_is_refused(car_frame: np.ndarray, tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {
        "zone_polygon": PARKING_ZONE,
        "box": CAR_BOX,
        "class_name": "car",
        "dwell_s": 5.0,
        "out_dir": tmp_path,
        "incident_id": "inc",
    } | kwargs
    with pytest.raises(ValueError, match=message):
        write_snapshots(car_frame, **args)
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_non_bgr_image(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="BGR"):
        write_snapshots(
            np.zeros((10, 10), np.uint8),
            zone_polygon=PARKING_ZONE,
            box=CAR_BOX,
            class_name="car",
            dwell_s=1.0,
            out_dir=tmp_path,
            incident_id="x",
        )
