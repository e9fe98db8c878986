"""``/healthz``: is this hub process able to serve? No authentication, so probes need no secret.

It runs one trivial query, so a hub whose database is gone reports 503 instead of "ok", and it
asks every registered background worker (``app.state.health_checks``: callables returning None
or a problem) -- a hub whose ingest writer died answers 503 too, instead of "ok" while nothing
is stored. It reveals nothing but the version, whether the database answers and which worker
failed.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from gridwarden import __version__
from gridwarden.hub.api.deps import Services

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness and database check (no authentication)")
def healthz(request: Request, services: Services) -> JSONResponse:
    problems = [p for check in getattr(request.app.state, "health_checks", ()) if (p := check()) is not None]
    if problems:
        log.warning("health check: %s", "; ".join(problems))
        return JSONResponse(
            {"status": "unavailable", "workers": "failed", "version": __version__}, status_code=503
        )
    try:
        with services.db.session() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database means "not healthy"
        log.warning("health check: database unavailable: %s", exc)
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable", "version": __version__}, status_code=503
        )
    return JSONResponse({"status": "ok", "database": services.db.dialect, "version": __version__})
