"""Field services (roster, dispatch, officer photos) on the app, and their routers.

:func:`install_field` is the one call that adds officers and dispatch to a hub app; ``hub
serve`` then starts the background parts (:mod:`.loop`, the OwnTracks consumer) itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Request

from gridwarden.contract import utcnow
from gridwarden.hub.db.engine import Database
from gridwarden.hub.dispatch.photos import PhotoStore
from gridwarden.hub.dispatch.service import DispatchService
from gridwarden.hub.dispatch.settings import DispatchSettings
from gridwarden.hub.officers.roster import Roster


@dataclass
class FieldServices:
    db: Database
    settings: DispatchSettings
    roster: Roster
    dispatch: DispatchService
    photos: PhotoStore
    # Where the hub keeps edge evidence by sha256 (for the task card's incident photo).
    evidence_root: Path


def get_field(request: Request) -> FieldServices:
    services: FieldServices = request.app.state.field
    return services


def install_field(
    app: FastAPI,
    db: Database,
    *,
    evidence_root: Path,
    settings: DispatchSettings | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> FieldServices:
    from gridwarden.hub.api import dispatch, field, officers, positions

    settings = settings or DispatchSettings.from_env()
    services = FieldServices(
        db=db,
        settings=settings,
        roster=Roster(db),
        dispatch=DispatchService(db, settings, clock=clock),
        photos=PhotoStore(evidence_root / "field-photos"),
        evidence_root=evidence_root,
    )
    app.state.field = services
    for module in (officers, positions, field, dispatch):
        app.include_router(module.router)
    install_officer_app(app)
    return services


FIELD_APP_DIR = Path(__file__).resolve().parent.parent / "field_app"


def install_officer_app(app: FastAPI) -> None:
    """The officer's mobile web app at ``/field/`` (static files; the service worker's scope)."""
    from fastapi.responses import RedirectResponse
    from fastapi.staticfiles import StaticFiles

    @app.get("/field", include_in_schema=False)
    def field_root() -> RedirectResponse:
        return RedirectResponse("/field/")

    app.mount("/field", StaticFiles(directory=FIELD_APP_DIR, html=True), name="field")
