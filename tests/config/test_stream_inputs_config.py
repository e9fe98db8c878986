"""Camera ``inputs`` with roles: one URL still works; bad role lists are named precisely."""

from __future__ import annotations

import json

import pytest

from gridwarden.edge.config import load_edge_config_text
from gridwarden.yamlconfig import ConfigError

BASE = "edge_id: e\ncameras:\n  - id: c\n{camera}\n"


def camera(text: str):  # type: ignore[no-untyped-def]
    return load_edge_config_text(BASE.format(camera=text)).cameras[0]


def test_one_url_is_both_detect_and_record() -> None:
    cam = camera("    url: rtsp://cam/main")
    assert (cam.detect_url, cam.record_url, cam.separate_record_stream) == (
        "rtsp://cam/main",
        "rtsp://cam/main",
        False,
    )


def test_detect_and_record_streams() -> None:
    cam = camera(
        "    inputs:\n"
        "      - {url: rtsp://cam/sub, roles: [detect]}\n"
        "      - {url: rtsp://cam/main, roles: [record]}"
    )
    assert (cam.url, cam.detect_url, cam.record_url) == (
        "rtsp://cam/sub",
        "rtsp://cam/sub",
        "rtsp://cam/main",
    )
    assert cam.separate_record_stream
    # The filled-in url round-trips (the hub stores and pushes the dumped config).
    again = load_edge_config_text(
        "edge_id: e\ncameras:\n  - " + json.dumps(cam.model_dump(mode="json"))
    ).cameras[0]
    assert again == cam


def test_one_input_with_both_roles() -> None:
    cam = camera("    inputs: [{url: rtsp://cam/main, roles: [detect, record]}]")
    assert cam.record_url == cam.detect_url == "rtsp://cam/main" and not cam.separate_record_stream


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "    inputs: [{url: rtsp://a, roles: [record]}]",
            "cameras[0]: inputs: no stream has the role 'detect'",
        ),
        (
            "    inputs: [{url: rtsp://a, roles: [detect]}, {url: rtsp://b, roles: [detect]}]",
            "2 streams have the role 'detect'",
        ),
        (
            "    inputs: [{url: rtsp://a, roles: [detect, record]}, {url: rtsp://b, roles: [record]}]",
            "2 streams have the role 'record'",
        ),
        ("    inputs: [{url: rtsp://a, roles: [detect, detect]}]", "cameras[0].inputs[0].roles"),
        ("    inputs: [{url: rtsp://a, roles: [analyse]}]", "cameras[0].inputs[0].roles"),
        (
            "    url: rtsp://x\n    inputs: [{url: rtsp://a, roles: [detect]}]",
            "url and the 'detect' input differ",
        ),
    ],
)
def test_bad_inputs_are_named(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        camera(text)
    assert expected in str(info.value)
