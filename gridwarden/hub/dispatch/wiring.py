"""Field services (roster, dispatch, officer photos) for the routers, and the officer app's pages.

:func:`build_field_services` is called once by :func:`gridwarden.hub.app.build_hub`; routes
receive the result as the ``Field`` dependency (``services.field``). The background parts
(dispatch loop, OwnTracks consumer) are :class:`gridwarden.hub.dispatch.runtime.FieldWorkers`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, status

from gridwarden.contract import utcnow
from gridwarden.hub.api.deps import Services, error
from gridwarden.hub.db.engine import Database
from gridwarden.hub.dispatch.photos import PhotoStore
from gridwarden.hub.dispatch.service import DispatchService
from gridwarden.hub.dispatch.settings import DispatchSettings
from gridwarden.hub.evidence_store import EvidenceStore
from gridwarden.hub.officers.roster import Roster

FIELD_APP_DIR = Path(__file__).resolve().parent.parent / "field_app"


@dataclass
class FieldServices:
    db: Database
    settings: DispatchSettings
    roster: Roster
    dispatch: DispatchService
    photos: PhotoStore
    # The edges' evidence (for the task card's incident photo).
    evidence: EvidenceStore


def build_field_services(
    db: Database,
    evidence: EvidenceStore,
    *,
    settings: DispatchSettings | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> FieldServices:
    settings = settings or DispatchSettings()
    return FieldServices(
        db=db,
        settings=settings,
        roster=Roster(db),
        dispatch=DispatchService(db, settings, clock=clock),
        photos=PhotoStore(evidence.root.parent / "field-photos"),
        evidence=evidence,
    )


def get_field(services: Services) -> FieldServices:
    if services.field is None:
        raise error(status.HTTP_503_SERVICE_UNAVAILABLE, "no_dispatch", "this hub runs no dispatch")
    return services.field


Field = Annotated[FieldServices, Depends(get_field)]


def mount_officer_app(app: FastAPI) -> None:
    """The officer's mobile web app at ``/field/`` (static files; the service worker's scope)
    and the dispatcher's board at ``/field/dispatch.html``."""
    from fastapi.responses import RedirectResponse
    from fastapi.staticfiles import StaticFiles

    @app.get("/field", include_in_schema=False)
    def field_root() -> RedirectResponse:
        return RedirectResponse("/field/")

    app.mount("/field", StaticFiles(directory=FIELD_APP_DIR, html=True), name="field")
