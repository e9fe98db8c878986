"""``/api/v1/cameras``: every camera with its state (online/connecting/offline) as its edge reports it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from gridwarden.hub.api.deps import Services, require
from gridwarden.hub.auth import Permission, Principal
from gridwarden.hub.schemas import CameraView

router = APIRouter(prefix="/api/v1/cameras", tags=["fleet"])


@router.get("", response_model=list[CameraView], summary="Cameras and their status")
def list_cameras(
    services: Services,
    _: Annotated[Principal, Depends(require(Permission.READ_FLEET))],
    edge_id: str | None = None,
    state: str | None = None,
) -> list[CameraView]:
    cameras = services.fleet.list_cameras()
    return [
        c
        for c in cameras
        if (edge_id is None or c.edge_id == edge_id) and (state is None or c.state == state)
    ]
