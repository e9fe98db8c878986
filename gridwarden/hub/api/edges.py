"""``/api/v1/edges``: every edge with its online flag from its retained status topic."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from gridwarden.hub.api.deps import Services, require
from gridwarden.hub.auth import Permission, Principal
from gridwarden.hub.schemas import EdgeView

router = APIRouter(prefix="/api/v1/edges", tags=["fleet"])


@router.get("", response_model=list[EdgeView], summary="Edges, their online status and sequence health")
def list_edges(
    services: Services,
    _: Annotated[Principal, Depends(require(Permission.READ_FLEET))],
    online: bool | None = None,
) -> list[EdgeView]:
    edges = services.fleet.list_edges()
    return edges if online is None else [e for e in edges if e.online is online]
