"""Region planning and mapping, without a model: crops cover the zones, tiles overlap enough,
canvases never overlap, motion never adds a model run, boxes come back to the right pixels."""

from __future__ import annotations

import numpy as np
import pytest

from gridwarden.edge.analytics.detector.mosaic import map_to_frame, paste_crops
from gridwarden.edge.analytics.detector.regions import (
    GAP_PX,
    CameraRegions,
    MotionRegions,
    Placement,
    RegionPlan,
    WatchedZone,
    ZoneRegion,
    plan_regions,
    tile_box,
    whole_frame_scale,
    with_motion,
    zone_box_px,
)
from gridwarden.edge.types import Detections

FRAME = (1920, 1080)
INPUT = (416, 416)
KERB = [(0.05, 0.75), (0.45, 0.75), (0.45, 0.95), (0.05, 0.95)]
CORNER = [(0.86, 0.86), (0.93, 0.86), (0.93, 0.91), (0.86, 0.91)]
# A long kerb strip across the whole frame: wider than any single crop at a useful scale.
STRIP = [(0.0, 0.80), (1.0, 0.80), (1.0, 0.90), (0.0, 0.90)]


def zone_region(polygon: list[tuple[float, float]], object_px: float) -> ZoneRegion:
    return ZoneRegion(zone_box_px(polygon, FRAME), object_px)


def covers(plan: RegionPlan, box: tuple[int, int, int, int]) -> bool:
    """Every pixel of ``box`` lies in some crop of the plan."""
    mask = np.zeros((FRAME[1], FRAME[0]), bool)
    for x0, y0, x1, y1 in plan.crops:
        mask[y0:y1, x0:x1] = True
    x0, y0, x1, y1 = box
    return bool(mask[y0:y1, x0:x1].all())


def assert_canvas_layout_valid(plan: RegionPlan) -> None:
    for p in plan.placements:
        assert p.x >= 0 and p.y >= 0, p
        assert p.x + p.width <= INPUT[0] and p.y + p.height <= INPUT[1], p
        assert p.width == max(1, round((p.box[2] - p.box[0]) * p.scale))
    for i, a in enumerate(plan.placements):
        for b in plan.placements[i + 1 :]:
            if a.canvas != b.canvas:
                continue
            apart_x = a.x + a.width + GAP_PX <= b.x or b.x + b.width + GAP_PX <= a.x
            apart_y = a.y + a.height + GAP_PX <= b.y or b.y + b.height + GAP_PX <= a.y
            assert apart_x or apart_y, (a, b)


def test_two_zones_fit_one_input_larger_than_whole_frame() -> None:
    zones = [zone_region(KERB, 86.0), zone_region(CORNER, 22.0)]
    plan = plan_regions(zones, FRAME, INPUT, max_inputs=1)
    assert plan is not None and plan.canvases == 1
    assert all(covers(plan, z.box) for z in zones)
    assert_canvas_layout_valid(plan)
    whole = whole_frame_scale(FRAME, INPUT)
    scales = {p.box: p.scale for p in plan.placements}
    assert min(scales.values()) > 1.5 * whole
    # the small corner zone's objects are estimated smaller, so it gets the larger scale
    corner = next(p for p in plan.placements if p.box[0] > 1000)
    assert corner.scale == max(scales.values())


def test_more_inputs_allowed_means_larger_crops() -> None:
    zones = [zone_region(KERB, 86.0), zone_region(CORNER, 22.0)]
    one = plan_regions(zones, FRAME, INPUT, max_inputs=1)
    two = plan_regions(zones, FRAME, INPUT, max_inputs=2)
    assert one is not None and two is not None
    assert two.canvases == 2 and two.min_scale() > one.min_scale()
    assert_canvas_layout_valid(two)


# A thin kerb line: folding it needs many tiles and the canvas width bounds them, so only the
# overlap the planner asks for keeps objects on tile borders whole.
THIN_STRIP = [(0.0, 0.85), (1.0, 0.85), (1.0, 0.87), (0.0, 0.87)]


@pytest.mark.parametrize(
    "polygon, object_px", [(STRIP, 60.0), (STRIP, 150.0), (THIN_STRIP, 20.0), (THIN_STRIP, 40.0)]
)
def test_long_strip_is_tiled_with_overlap_that_holds_any_object_whole(
    polygon: list[tuple[float, float]], object_px: float
) -> None:
    zone = zone_region(polygon, object_px)
    plan = plan_regions([zone], FRAME, INPUT, max_inputs=1)
    assert plan is not None
    assert len(plan.placements) >= 2, "a strip across a 16:9 frame should be folded into tiles"
    assert plan.min_scale() > 1.3 * whole_frame_scale(FRAME, INPUT)
    assert covers(plan, zone.box)
    assert_canvas_layout_valid(plan)
    # Any object up to 1.5x the zone's estimated size, anywhere along the strip, is whole
    # inside one tile (the promised overlap).
    width = 1.5 * object_px
    for x in range(zone.box[0], zone.box[2] - int(width), 7):
        assert any(t[0] <= x and x + width <= t[2] for t in plan.crops), (x, plan.crops)


def test_tile_box_overlap_and_bounds() -> None:
    tiles = tile_box((0, 0, 1000, 100), max_w=300, max_h=200, overlap=50)
    assert tiles[0][0] == 0 and tiles[-1][2] == 1000
    assert all(t[2] - t[0] <= 300 for t in tiles)
    for a, b in zip(tiles, tiles[1:], strict=False):
        assert a[2] - b[0] >= 50  # neighbours overlap by at least the overlap
    assert tile_box((10, 10, 100, 100), 300, 300, 50) == [(10, 10, 100, 100)]


def test_auto_uses_zones_only_where_objects_would_be_small() -> None:
    frame = np.zeros((FRAME[1], FRAME[0], 3), np.uint8)
    bikes = CameraRegions([WatchedZone(KERB, "bottom_center", ("bicycle",))], mode="auto")
    assert bikes.plan(frame, INPUT) is not None
    buses = CameraRegions([WatchedZone(KERB, "bottom_center", ("bus",))], mode="auto")
    # 216 px deep zone, a bus 3 m of 2.5: 259 px, 56 px whole-frame: no need for crops
    assert buses.plan(frame, INPUT) is None
    forced = CameraRegions([WatchedZone(KERB, "bottom_center", ("bus",))], mode="zones")
    assert forced.plan(frame, INPUT) is not None
    never = CameraRegions([WatchedZone(KERB, "bottom_center", ("bicycle",))], mode="whole")
    assert never.plan(frame, INPUT) is None
    assert CameraRegions([], mode="zones").plan(frame, INPUT) is None
    with pytest.raises(ValueError, match="whole, zones or auto"):
        CameraRegions([], mode="sometimes")


def test_auto_falls_back_to_whole_frame_when_crops_gain_nothing() -> None:
    # Three zones covering most of the frame: one input cannot show them larger than the whole frame.
    zones = [
        WatchedZone([(0.0, 0.0), (1.0, 0.0), (1.0, 0.33), (0.0, 0.33)], "bottom_center", ("bicycle",)),
        WatchedZone([(0.0, 0.34), (1.0, 0.34), (1.0, 0.66), (0.0, 0.66)], "bottom_center", ("bicycle",)),
        WatchedZone([(0.0, 0.67), (1.0, 0.67), (1.0, 1.0), (0.0, 1.0)], "bottom_center", ("bicycle",)),
    ]
    frame = np.zeros((FRAME[1], FRAME[0], 3), np.uint8)
    assert CameraRegions(zones, mode="auto").plan(frame, INPUT) is None


def test_motion_near_a_zone_gets_a_crop_in_free_space_only() -> None:
    zones = [zone_region(CORNER, 22.0)]
    plan = plan_regions(zones, FRAME, INPUT, max_inputs=1)
    assert plan is not None
    crop = plan.crops[0]
    left_of_crop = np.array([[crop[0] - 60, crop[1] + 10, crop[0] - 20, crop[1] + 50]], np.float32)
    far_away = np.array([[50, 50, 90, 90]], np.float32)
    inside = np.array([[crop[0] + 5, crop[1] + 5, crop[0] + 30, crop[1] + 30]], np.float32)
    moved = with_motion(plan, np.concatenate([left_of_crop, far_away, inside]))
    motion = [p for p in moved.placements if p.source == "motion"]
    assert len(motion) == 1
    mx0, my0, mx1, my1 = motion[0].box
    assert mx0 <= left_of_crop[0, 0] and mx1 >= left_of_crop[0, 2] and my0 <= left_of_crop[0, 1]
    assert moved.canvases == plan.canvases  # motion never costs another model run
    assert_canvas_layout_valid(moved)
    # a canvas already full takes no motion crop
    full = plan_regions([zone_region(STRIP, 60.0)], FRAME, INPUT, max_inputs=1)
    assert full is not None
    near_strip = np.array([[900, 700, 1000, 760]], np.float32)
    packed = with_motion(full, near_strip)
    assert packed.canvases == 1
    assert_canvas_layout_valid(packed)


def test_motion_regions_find_what_changed() -> None:
    finder = MotionRegions()
    still = np.full((1080, 1920, 3), 90, np.uint8)
    assert len(finder.update(still)) == 0  # first frame: nothing to compare with
    moved = still.copy()
    moved[600:700, 1000:1100] = 220
    boxes = finder.update(moved)
    assert len(boxes) == 1
    x0, y0, x1, y1 = boxes[0]
    assert x0 <= 1000 and y0 <= 600 and x1 >= 1100 and y1 >= 700
    assert x1 - x0 < 200 and y1 - y0 < 200
    assert len(finder.update(moved)) == 0


def _plan_two_tiles() -> RegionPlan:
    # Two crops of one frame at scale 0.5 side by side on one canvas: the frame's x 0-400 and
    # x 300-700 (overlapping by 100 px), both y 100-500.
    a = Placement((0, 100, 400, 500), 0, 0, 0, 200, 200, 0.5)
    b = Placement((300, 100, 700, 500), 0, 208, 0, 200, 200, 0.5)
    return RegionPlan((1920, 1080), INPUT, 1, (a, b))


def test_boxes_map_back_to_frame_pixels_and_merge_across_overlap() -> None:
    plan = _plan_two_tiles()
    # The same object (frame x 320-380, y 200-300) seen by both tiles, plus one only in tile a.
    found = Detections(
        xyxy=[[160, 50, 190, 100], [218, 50, 248, 100], [10, 20, 30, 40]],
        confidence=[0.8, 0.7, 0.6],
        class_id=[2, 2, 0],
    )
    merged = map_to_frame([found], plan, iou_threshold=0.45)
    order = np.argsort(merged.class_id)
    assert merged.class_id[order].tolist() == [0, 2]
    np.testing.assert_allclose(merged.xyxy[order], [[20, 140, 60, 180], [320, 200, 380, 300]], atol=0.6)


def test_fragment_cut_by_a_tile_edge_is_dropped_where_another_tile_holds_it_whole() -> None:
    plan = _plan_two_tiles()
    # Object at frame x 360-460: whole in tile b (b: canvas 238-288); tile a sees only x 360-400,
    # cut at a's right edge (canvas 180-200), a box of 40 px instead of 100.
    found = Detections(
        xyxy=[[180, 50, 200, 100], [238, 50, 288, 100]], confidence=[0.9, 0.6], class_id=[2, 2]
    )
    merged = map_to_frame([found], plan, iou_threshold=0.45)
    assert len(merged) == 1
    np.testing.assert_allclose(merged.xyxy[0], [360, 200, 460, 300], atol=0.6)


def test_box_spilling_across_the_gap_is_dropped() -> None:
    plan = _plan_two_tiles()
    # Centre in tile a, but most of the box lies over the gap and tile b: the model read two
    # crops as one object.
    found = Detections(xyxy=[[140, 50, 250, 100]], confidence=[0.9], class_id=[2])
    assert len(map_to_frame([found], plan, iou_threshold=0.45)) == 0


def test_paste_crops_puts_each_crop_in_its_rectangle_on_grey() -> None:
    image = np.zeros((1080, 1920, 3), np.uint8)
    image[100:500, 0:400] = (10, 20, 30)  # BGR
    image[100:500, 300:700] = (200, 100, 50)
    plan = _plan_two_tiles()
    canvas = paste_crops(image, plan.placements, np.empty((416, 416, 3), np.uint8))
    assert canvas[100, 50].tolist() == [10, 20, 30]  # tile a, away from the overlap
    assert canvas[100, 300].tolist() == [200, 100, 50]  # tile b
    assert canvas[100, 204].tolist() == [114, 114, 114]  # the gap
    assert canvas[300, 50].tolist() == [114, 114, 114]  # below the crops


def test_auto_weighs_the_smallest_object_over_all_zones() -> None:
    """A near zone with big objects plus a far pavement strip (configs/edge-skynet.yaml): the far
    bicycles decide; one input shows them 2x+ larger than the whole frame would."""
    near = WatchedZone(
        [(0.10, 0.50), (0.60, 0.50), (0.60, 0.98), (0.10, 0.98)], "bottom_center", ("bicycle",)
    )
    far = WatchedZone([(0.62, 0.30), (0.98, 0.30), (0.98, 0.40), (0.62, 0.40)], "bottom_center", ("bicycle",))
    plan = CameraRegions([near, far], mode="auto").base_plan(FRAME, INPUT)
    assert plan is not None and plan.canvases == 1
    far_bicycle_whole = zone_box_px(far.polygon, FRAME)[3] - zone_box_px(far.polygon, FRAME)[1]
    far_bicycle_whole *= 1.0 / 2.5 * whole_frame_scale(FRAME, INPUT)  # 9 px: hopeless
    assert plan.smallest_object_px() >= 2 * far_bicycle_whole
    assert_canvas_layout_valid(plan)
    # no two near-identical tiles: a crop a little too large is shrunk, not cut in two
    boxes = [p.box for p in plan.placements]
    assert len(boxes) == 2, boxes
