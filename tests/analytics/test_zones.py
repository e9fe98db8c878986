"""Zone geometry: membership by anchor with masks, coverage of known areas, validation messages."""

from __future__ import annotations

import numpy as np
import pytest

from gridwarden.edge.analytics.zones import Zone, points_in_polygon, validate_polygon

from .scenes import dets

LOWER_HALF = [(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)]
# A mask over the lower-left quarter of the frame (a legal parking bay).
LEFT_BAY = [(0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (0.0, 1.0)]


def test_contains_respects_masks() -> None:
    zone = Zone("kerb", LOWER_HALF, masks=[LEFT_BAY])
    d = dets([[100, 150, 140, 180], [300, 150, 340, 180], [300, 10, 340, 40]])  # frame 400x200
    assert zone.contains(d, (400, 200)).tolist() == [False, True, False]
    assert Zone("kerb", LOWER_HALF).contains(d, (400, 200)).tolist() == [True, True, False]


def test_anchor_choice_decides_membership() -> None:
    """A tall box with its wheels in the zone and its roof above the zone line."""
    d = dets([[100, 60, 140, 110]])  # frame 200x200: bottom at y=0.55, centre at 0.425
    assert Zone("z", LOWER_HALF).contains(d, (200, 200)).tolist() == [True]
    assert Zone("z", LOWER_HALF, anchor="center").contains(d, (200, 200)).tolist() == [False]
    assert Zone("z", LOWER_HALF, anchor="top_center").contains(d, (200, 200)).tolist() == [False]


def test_contains_on_a_concave_polygon() -> None:
    u_shape = [(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.6, 0.9), (0.6, 0.4), (0.4, 0.4), (0.4, 0.9), (0.1, 0.9)]
    pts = np.array([[0.2, 0.8], [0.5, 0.8], [0.8, 0.8], [0.5, 0.2], [0.95, 0.5]])
    assert points_in_polygon(pts, np.array(u_shape)).tolist() == [True, False, True, True, False]


def test_contains_handles_no_detections() -> None:
    assert Zone("z", LOWER_HALF).contains(dets([]), (640, 360)).shape == (0,)


def test_resolution_independence() -> None:
    zone = Zone("kerb", LOWER_HALF, masks=[LEFT_BAY])
    rng = np.random.default_rng(1)
    boxes_norm = np.sort(rng.uniform(0, 1, (200, 2, 2)), axis=1).transpose(0, 2, 1).reshape(-1, 4)
    boxes_norm = boxes_norm[:, [0, 2, 1, 3]]  # x1, y1, x2, y2
    results = []
    for w, h in ((640, 360), (1920, 1080), (768, 432)):
        d = dets(boxes_norm * [w, h, w, h])
        results.append((zone.contains(d, (w, h)), zone.coverage(d.xyxy[:5], (w, h))))
    for inside, cov in results[1:]:
        assert (inside == results[0][0]).mean() > 0.99  # float32 rounding on exact edges only
        assert cov == pytest.approx(results[0][1], abs=0.01)
    assert 20 < results[0][0].sum() < 180  # the sample is not trivially all in or all out


@pytest.mark.parametrize("frame", [(100, 100), (1920, 1080), (333, 777)])
def test_coverage_of_known_areas(frame: tuple[int, int]) -> None:
    w, h = frame
    zone = Zone("kerb", LOWER_HALF)
    assert zone.coverage(np.zeros((0, 4)), frame) == 0.0
    assert zone.coverage(np.array([[0, 0, w, h]]), frame) == pytest.approx(1.0)
    # Left half of the zone.
    assert zone.coverage(np.array([[0, h / 2, w / 2, h]]), frame) == pytest.approx(0.5, abs=0.01)
    # Two overlapping boxes over the same quarter count once.
    quarter = [0, h / 2, w / 4, h]
    assert zone.coverage(np.array([quarter, quarter]), frame) == pytest.approx(0.25, abs=0.01)
    # A box entirely above the zone covers nothing; one half in, half out covers its inside part.
    assert zone.coverage(np.array([[0, 0, w, h / 2]]), frame) == pytest.approx(0.0, abs=0.01)
    assert zone.coverage(np.array([[0, h / 4, w / 2, 3 * h / 4]]), frame) == pytest.approx(0.25, abs=0.01)


def test_coverage_excludes_masked_area() -> None:
    zone = Zone("kerb", LOWER_HALF, masks=[LEFT_BAY])
    # The zone minus the mask is the lower-right quarter; a box over the whole lower half covers
    # all of it, a box over the mask covers nothing.
    assert zone.coverage(np.array([[0, 50, 100, 100]]), (100, 100)) == pytest.approx(1.0)
    assert zone.coverage(np.array([[0, 50, 50, 100]]), (100, 100)) == pytest.approx(0.0)
    assert zone.coverage(np.array([[50, 50, 75, 100]]), (100, 100)) == pytest.approx(0.5, abs=0.01)


def test_coverage_of_a_triangle() -> None:
    zone = Zone("tri", [(0, 0), (1, 0), (0, 1)])
    # The box x<0.5, y<0.5 lies fully inside the triangle: 0.25 / 0.5 of its area.
    assert zone.coverage(np.array([[0, 0, 320, 180]]), (640, 360)) == pytest.approx(0.5, abs=0.01)


def test_polygon_px_scales_with_frame() -> None:
    zone = Zone("kerb", LOWER_HALF)
    assert zone.polygon_px((640, 360)).tolist() == [[0, 180], [640, 180], [640, 360], [0, 360]]
    assert zone.polygon_px((640, 360)).dtype == np.int32


def test_validate_accepts_a_good_polygon() -> None:
    assert validate_polygon(LOWER_HALF) == []
    assert validate_polygon([(0, 0), (1, 0), (0, 1)]) == []


def test_validate_reports_a_bow_tie_with_its_edges() -> None:
    bow_tie = [(0.1, 0.1), (0.9, 0.9), (0.9, 0.1), (0.1, 0.9)]
    assert validate_polygon(bow_tie) == ["edges 1-2 and 3-4 cross (the polygon is self-intersecting)"]
    # Crossing that involves the closing edge (5-1) of a pentagon.
    star = [(0.5, 0.1), (0.6, 0.9), (0.1, 0.4), (0.9, 0.4), (0.4, 0.9)]
    problems = validate_polygon(star)
    assert any("edges 5-1 and" in p or "and 5-1" in p for p in problems)
    assert len(problems) == 5


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([(0, 0), (1, 1)], "at least 3 points, got 2"),
        ([(0, 0), (1.2, 0), (0, 1)], "point 2 (1.2, 0) is outside the frame"),
        ([(0, 0), (0.5, 0.5), (1, 1)], "zero area"),
        ([(0, 0), (1, 0), (1, 0), (0, 1)], "points 2 and 3 are the same point"),
        ([(0, 0), (1, 0), (float("nan"), 1)], "point 3 is not a finite number"),
        ([(0, 0, 0), (1, 0, 0), (0, 1, 0)], "not a list of (x, y) points"),
    ],
)
def test_validate_messages_say_what_and_where(points, expected: str) -> None:
    problems = validate_polygon(points)
    assert any(expected in p for p in problems), problems


def test_zone_refuses_invalid_polygons_and_masks() -> None:
    with pytest.raises(ValueError, match=r"zone 'kerb': edges 1-2 and 3-4 cross"):
        Zone("kerb", [(0.1, 0.1), (0.9, 0.9), (0.9, 0.1), (0.1, 0.9)])
    with pytest.raises(ValueError, match=r"zone 'kerb' mask 1: a polygon needs at least 3 points"):
        Zone("kerb", LOWER_HALF, masks=[[(0, 0), (1, 1)]])
    with pytest.raises(ValueError, match="anchor"):
        Zone("kerb", LOWER_HALF, anchor="left")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="frame_size"):
        Zone("kerb", LOWER_HALF).contains(dets([[0, 0, 1, 1]]), (0, 10))
