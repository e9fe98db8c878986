"""Areas and points around a made-up crossing in Shanghai, for the field tests."""

from __future__ import annotations

from typing import Any

# Two beats side by side (west, east), and one estate grid inside the east beat.
LAT0, LON0 = 31.2300, 121.4700


def square(area_id: str, lat: float, lon: float, size: float, **props: Any) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {
        "type": "Feature",
        "id": area_id,
        "properties": props,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def district() -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            square("beat-west", LAT0, LON0, 0.01, name="西区巡逻", kind="beat"),
            square("beat-east", LAT0, LON0 + 0.01, 0.01, name="东区巡逻", kind="beat"),
            square("grid-e1", LAT0 + 0.002, LON0 + 0.012, 0.003, name="东一网格", kind="grid"),
        ],
    }
