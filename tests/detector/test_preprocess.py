"""Letterbox geometry, colour order and scale, and its inverse."""

from __future__ import annotations

import numpy as np
import pytest

from gridwarden.edge.analytics.detector.preprocess import InputFormat, letterbox

YOLOX_FMT = InputFormat(416, 416, rgb=False, scale=1.0, centre_pad=False)
V5_FMT = InputFormat(320, 320, rgb=True, scale=1 / 255, centre_pad=True)


def _image(h: int, w: int, bgr: tuple[int, int, int]) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[:] = bgr
    return img


def test_yolox_format_pads_bottom_right_in_bgr_0_255() -> None:
    tensor, tf = letterbox(_image(432, 768, (10, 20, 30)), YOLOX_FMT)
    assert tensor.shape == (3, 416, 416) and tensor.dtype == np.float32
    content_h = round(432 * 416 / 768)  # 234
    assert (tf.pad_x, tf.pad_y) == (0.0, 0.0)
    assert tensor[:, :content_h].reshape(3, -1).mean(axis=1).tolist() == [10.0, 20.0, 30.0]
    assert np.all(tensor[:, content_h:] == 114.0)


def test_v5_format_centres_in_rgb_0_1() -> None:
    tensor, tf = letterbox(_image(480, 640, (0, 0, 255)), V5_FMT)  # pure red in BGR
    assert tf.scale == 0.5 and (tf.pad_x, tf.pad_y) == (0.0, 40.0)
    np.testing.assert_allclose(tensor[:, 40:280].reshape(3, -1).mean(axis=1), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(tensor[:, :40], 114 / 255, rtol=1e-6)
    np.testing.assert_allclose(tensor[:, 280:], 114 / 255, rtol=1e-6)


@pytest.mark.parametrize("fmt", [YOLOX_FMT, V5_FMT])
@pytest.mark.parametrize("shape", [(432, 768), (1080, 1920), (200, 120), (416, 416), (50, 900)])
def test_box_maps_back_to_the_same_pixels(fmt: InputFormat, shape: tuple[int, int]) -> None:
    h, w = shape
    _, tf = letterbox(np.zeros((h, w, 3), np.uint8), fmt)
    boxes = np.array([[0, 0, w, h], [w * 0.25, h * 0.5, w * 0.75, h * 0.9]], np.float32)
    np.testing.assert_allclose(tf.to_original(tf.to_input(boxes)), boxes, atol=1e-3 * max(w, h))
    inside = tf.to_input(boxes)[0]
    assert (
        inside[0] >= 0 and inside[1] >= 0 and inside[2] <= fmt.width + 0.5 and inside[3] <= fmt.height + 0.5
    )


def test_image_content_lands_where_the_transform_says() -> None:
    """A white square drawn in the original must appear where to_input puts its box."""
    img = np.zeros((300, 500, 3), np.uint8)
    img[100:200, 300:400] = 255
    for fmt in (YOLOX_FMT, V5_FMT):
        tensor, tf = letterbox(img, fmt)
        x1, y1, x2, y2 = tf.to_input(np.array([[300, 100, 400, 200]]))[0]
        ys, xs = np.nonzero(tensor[0] > 0.9 * tensor.max())
        assert abs(xs.min() - x1) <= 1 and abs(xs.max() + 1 - x2) <= 1
        assert abs(ys.min() - y1) <= 1 and abs(ys.max() + 1 - y2) <= 1


def test_boxes_are_clipped_to_the_original_image() -> None:
    _, tf = letterbox(np.zeros((432, 768, 3), np.uint8), YOLOX_FMT)
    out = tf.to_original(np.array([[-10, -10, 500, 300]], np.float32))
    assert out.tolist() == [[0.0, 0.0, 768.0, 432.0]]


@pytest.mark.parametrize(
    "bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32), np.zeros((0, 10, 3), np.uint8)]
)
def test_bad_images_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        letterbox(bad, YOLOX_FMT)
