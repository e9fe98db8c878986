"""One polygon rasteriser: the motion gate's / static detector's masks, zone coverage and the
zone point test agree about every pixel."""

from __future__ import annotations

import numpy as np
import pytest

from gridwarden.edge.analytics.gate import region_mask
from gridwarden.edge.analytics.zones import Zone
from gridwarden.geometry import polygon_mask

# An irregular, concave kerb-side zone with a tree-shaped hole in it.
KERB = [(0.05, 0.95), (0.12, 0.41), (0.37, 0.33), (0.44, 0.62), (0.71, 0.38), (0.93, 0.97)]
TREE = [(0.30, 0.70), (0.42, 0.68), (0.40, 0.85), (0.29, 0.83)]


def pixel_centres(w: int, h: int) -> np.ndarray:
    xs = (np.arange(w) + 0.5) / w
    ys = (np.arange(h) + 0.5) / h
    return np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)


@pytest.mark.parametrize("size", [(160, 90), (97, 61), (320, 180)])
def test_gate_mask_and_zone_point_test_agree_on_every_pixel(size: tuple[int, int]) -> None:
    w, h = size
    zone = Zone("kerb", KERB)
    expected = zone.contains_points(pixel_centres(w, h)).reshape(h, w)
    mask = region_mask([KERB], size)
    assert mask.shape == (h, w) and mask.any()
    assert np.array_equal(mask, expected)


def test_zone_coverage_counts_the_same_cells_as_the_shared_mask() -> None:
    zone = Zone("kerb", KERB, masks=[TREE])
    w, h = 320, 180
    raster = polygon_mask([KERB], (w, h), exclude=[TREE])
    left = np.array([[0, 0, w / 2, h]])
    expected = np.count_nonzero(raster[:, : w // 2]) / np.count_nonzero(raster)
    assert zone.coverage(left, (w, h)) == pytest.approx(expected)
    assert zone.coverage(np.array([[0, 0, w, h]]), (w, h)) == 1.0


def test_overlapping_regions_are_a_union_not_an_even_odd_fill() -> None:
    left = [(0.0, 0.0), (0.6, 0.0), (0.6, 1.0), (0.0, 1.0)]
    right = [(0.4, 0.0), (1.0, 0.0), (1.0, 1.0), (0.4, 1.0)]
    assert region_mask([left, right], (10, 4)).all()


def test_a_region_too_thin_for_the_analysis_size_is_refused() -> None:
    sliver = [(0.1, 0.5), (0.9, 0.5), (0.9, 0.501)]
    with pytest.raises(ValueError, match="cover no pixel"):
        region_mask([sliver], (32, 18))
