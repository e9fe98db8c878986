"""The hub's web application: :func:`create_app` wires the services into the routers.

A factory rather than a module-level ``app`` so that tests, the ``hub serve`` command and a
future multi-worker deployment each build their own app on their own database handle.

>>> app = create_app(HubSettings(database_url="sqlite:///var/hub.db"))   # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8080)                         # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gridwarden import __version__
from gridwarden.hub.api import cameras, cases, dead_letters, edges, health, users
from gridwarden.hub.api.config_documents import build_config_documents_router
from gridwarden.hub.api.configs import build_configs_router
from gridwarden.hub.api.deps import HubServices, Waker
from gridwarden.hub.api.security_headers import SecurityHeaders
from gridwarden.hub.auth import UserStore
from gridwarden.hub.cases import CaseService
from gridwarden.hub.config_push import ConfigPublisher
from gridwarden.hub.db.engine import Database
from gridwarden.hub.settings import HubSettings

DESCRIPTION = """
The Gridwarden hub: the case queue fed by the edges' incidents, and the fleet's status.

Every endpoint except `/healthz` needs `Authorization: Bearer <token>`; tokens are issued with
`gridwarden users create NAME --role staff|integrator|admin`. Roles: **staff** read and move
cases; **integrator** read cases, edges and cameras; **admin** may do everything, including users.
"""


def create_app(
    settings: HubSettings | None = None,
    *,
    db: Database | None = None,
    webhook_states: Collection[str] = (),
    webhook_waker: Waker | None = None,
    migrate: bool = True,
    config_publisher: ConfigPublisher | None = None,
) -> FastAPI:
    """Build the API.

    ``db``: an open database to use (the caller keeps owning it); otherwise one is opened from
    ``settings.database_url`` (migrated unless ``migrate`` is false) and closed at shutdown.
    ``webhook_states``: case states whose arrival is queued for the webhook forwarder
    (``("confirmed",)`` when a webhook is configured). ``webhook_waker``: told after such a
    transition so the forwarder sends at once instead of at its next poll.
    ``config_publisher``: sends edge configurations on their retained MQTT topics; without it
    configurations are stored and validated but not pushed.
    """
    settings = settings or HubSettings.from_env()
    owns_db = db is None
    database = db if db is not None else Database.open(settings.database_url, migrate=migrate)
    services = HubServices(
        db=database,
        cases=CaseService(
            database,
            merge_window_s=settings.merge_window_s,
            merge_iou=settings.merge_iou,
            sla_target_s=settings.sla_target_s,
            webhook_on=webhook_states,
        ),
        users=UserStore(database),
        webhook_waker=webhook_waker,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owns_db:
                database.dispose()

    app = FastAPI(title="Gridwarden hub", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.add_middleware(SecurityHeaders)
    app.state.services = services
    app.state.config_publisher = config_publisher
    for module in (health, cases, edges, cameras, users, dead_letters):
        app.include_router(module.router)
    app.include_router(build_configs_router())
    app.include_router(build_config_documents_router())
    return app
