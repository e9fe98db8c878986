"""Two JPEGs of the moment a rule fired: the frame as the camera saw it, and the same frame with
the zone, the object's box, its class and its dwell time drawn on it.

Why both: the clean frame is the evidence (nothing drawn over the number plate or the kerb);
the annotated one tells a reviewer at a glance which object in which zone the edge meant.
Geometry is normalised (0..1), like everything on the wire, so the caller passes the zone and
box exactly as the rule and the incident message have them.

Example::

    >>> clean, annotated = write_snapshots(frame.image, zone_polygon=[[0.2, 0.6], [0.7, 0.6],
    ...     [0.7, 1.0], [0.2, 1.0]], box=(0.34, 0.28, 0.56, 0.88), class_name="car", dwell_s=95.0,
    ...     out_dir=Path("/var/lib/gridwarden/evidence"), incident_id="01HX")   # doctest: +SKIP
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from gridwarden.edge.capture.evidence.clips import safe_incident_id
from gridwarden.edge.capture.evidence.files import EvidenceFile, EvidenceKind, fsync_and_rename

ZONE_COLOUR = (0, 200, 255)  # BGR amber
BOX_COLOUR = (0, 0, 255)  # BGR red
TEXT_COLOUR = (255, 255, 255)


def _to_pixels(points: np.ndarray, width: int, height: int) -> np.ndarray:
    scale = np.array([width - 1, height - 1], dtype=np.float64)
    return np.rint(np.clip(points, 0.0, 1.0) * scale).astype(np.int32)


def _check_normalised(name: str, values: np.ndarray) -> None:
    if not np.all(np.isfinite(values)) or values.min() < 0.0 or values.max() > 1.0:
        raise ValueError(f"{name} must be normalised to 0..1, got {values.tolist()}")


def draw_overlay(
    image_bgr: np.ndarray,
    *,
    zone_polygon: Sequence[Sequence[float]] | np.ndarray,
    box: Sequence[float] | np.ndarray,
    class_name: str,
    dwell_s: float,
) -> np.ndarray:
    """A copy of ``image_bgr`` with the zone (translucent fill and outline), the box, and a
    ``class · dwell`` label drawn; the input is not modified."""
    height, width = image_bgr.shape[:2]
    polygon = np.asarray(zone_polygon, dtype=np.float64)
    if polygon.ndim != 2 or polygon.shape[1] != 2 or len(polygon) < 3:
        raise ValueError(f"zone_polygon must be 3 or more (x, y) points, got shape {polygon.shape}")
    xyxy = np.asarray(box, dtype=np.float64).reshape(-1)
    if xyxy.shape != (4,):
        raise ValueError(f"box must be (x1, y1, x2, y2), got {xyxy.tolist()}")
    _check_normalised("zone_polygon", polygon)
    _check_normalised("box", xyxy)

    out = image_bgr.copy()
    zone_px = _to_pixels(polygon, width, height)
    fill = out.copy()
    cv2.fillPoly(fill, [zone_px], ZONE_COLOUR)
    cv2.addWeighted(fill, 0.25, out, 0.75, 0.0, dst=out)
    cv2.polylines(out, [zone_px], True, ZONE_COLOUR, 2, cv2.LINE_AA)

    (x1, y1), (x2, y2) = _to_pixels(xyxy.reshape(2, 2), width, height)
    thickness = max(2, round(min(width, height) / 200))
    cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), BOX_COLOUR, thickness)

    label = f"{class_name}  {_format_dwell(dwell_s)} in zone"
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.45, min(width, height) / 900)
    (tw, th), baseline = cv2.getTextSize(label, font, scale, 1)
    lx = int(min(max(x1, 0), max(width - tw - 4, 0)))
    ly = int(y1 - 4 if y1 - th - baseline - 4 >= 0 else min(y2 + th + 4, height - baseline - 1))
    cv2.rectangle(out, (lx, ly - th - 3), (lx + tw + 4, ly + baseline), BOX_COLOUR, -1)
    cv2.putText(out, label, (lx + 2, ly - 1), font, scale, TEXT_COLOUR, 1, cv2.LINE_AA)
    return out


def _format_dwell(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _write_jpeg(
    image: np.ndarray,
    path: Path,
    kind: EvidenceKind,
    quality: int,
    media_time: float | None,
    incident_id: str,
) -> EvidenceFile:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for {path.name}")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    tmp.write_bytes(encoded.tobytes())
    fsync_and_rename(tmp, path)
    return EvidenceFile.from_path(
        path, kind, media_start=media_time, media_end=media_time, incident_id=incident_id
    )


def write_snapshots(
    image_bgr: np.ndarray,
    *,
    zone_polygon: Sequence[Sequence[float]] | np.ndarray,
    box: Sequence[float] | np.ndarray,
    class_name: str,
    dwell_s: float,
    out_dir: Path,
    incident_id: str,
    media_time: float | None = None,
    quality: int = 90,
) -> tuple[EvidenceFile, EvidenceFile]:
    """Write ``<incident>_snapshot.jpg`` (clean) and ``<incident>_snapshot_annotated.jpg``;
    return (clean, annotated). ``media_time`` is the frame's, recorded as both ends of the span."""
    safe_incident_id(incident_id)
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ValueError(f"expected a BGR uint8 image (H, W, 3), got {image_bgr.dtype} {image_bgr.shape}")
    annotated = draw_overlay(
        image_bgr, zone_polygon=zone_polygon, box=box, class_name=class_name, dwell_s=dwell_s
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clean = _write_jpeg(
        image_bgr, out_dir / f"{incident_id}_snapshot.jpg", "snapshot", quality, media_time, incident_id
    )
    drawn = _write_jpeg(
        annotated,
        out_dir / f"{incident_id}_snapshot_annotated.jpg",
        "snapshot_annotated",
        quality,
        media_time,
        incident_id,
    )
    return clean, drawn
