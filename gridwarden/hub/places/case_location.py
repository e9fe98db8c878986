"""A new case takes its camera's location (from the camera's status message) and its area.

Called inside the ingest transaction when a case is opened: one primary-key read of the camera
row and one bounding-box query over the areas. A camera without a location gives a case
without one (the dispatcher then cannot rank officers by distance and says so).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from gridwarden.hub.db.models import Camera, Case
from gridwarden.hub.places.areas import area_at


def camera_location(session: Session, edge_id: str, camera_id: str) -> tuple[float, float] | None:
    camera = session.get(Camera, (edge_id, camera_id))
    location = (camera.status or {}).get("location") if camera is not None else None
    if not isinstance(location, dict):
        return None
    try:
        return float(location["lat"]), float(location["lon"])
    except (KeyError, TypeError, ValueError):
        return None


def locate_case(session: Session, case: Case) -> None:
    """Fill ``case.lat``/``lon`` from its camera (unless already set) and ``case.area_id``."""
    if case.lat is None or case.lon is None:
        where = camera_location(session, case.edge_id, case.camera)
        if where is None:
            return
        case.lat, case.lon = where
    case.area_id = area_at(session, case.lat, case.lon)
