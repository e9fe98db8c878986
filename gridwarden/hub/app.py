"""The hub's composition root: :func:`build_hub` makes every part of a hub process from its settings.

``gridwarden hub serve`` (what systemd runs), ``gridwarden demo`` (through ``hub serve``), the
benchmarks and the tests all build the hub here, so a route, a service or a background worker
exists in one place and a test exercises the hub that production runs.

What is built, and who owns what:

* :class:`~gridwarden.hub.api.deps.HubServices` — the database, cases, users, evidence store,
  dry-run worker and config publisher that routes receive as ``Annotated`` dependencies;
* the FastAPI app (:func:`create_app`): every router in :data:`ROUTERS`, the console's pages and
  ``/metrics``;
* the workers :meth:`Hub.start` starts and :meth:`Hub.stop` stops in order: MQTT ingest, the
  webhook forwarder (only with ``webhook_url``), the evidence pruner, the dispatcher and the
  officers' OwnTracks consumer, the config publisher, the Open311 forwarder (only with
  ``open311_forward_url``).

>>> hub = build_hub(HubSettings(database_url="sqlite:///var/hub.db"))    # doctest: +SKIP
>>> hub.start(); uvicorn.run(hub.app, port=8080); hub.stop()              # doctest: +SKIP

Tests that need the app only (``TestClient(hub.app)``) never call :meth:`Hub.start`; they still
call :meth:`Hub.stop` (or use ``with build_hub(...) as hub``) to release what was opened.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from fastapi import APIRouter, FastAPI

from gridwarden import __version__
from gridwarden.backoff import Backoff
from gridwarden.contract import utcnow
from gridwarden.hub.api import (
    areas,
    cameras,
    cases,
    categories,
    city,
    config_documents,
    configs,
    console,
    console_review,
    dead_letters,
    dispatch,
    dry_run,
    edges,
    evidence,
    health,
    officers,
    open311,
    positions,
    qr_points,
    reference,
    resident_pages,
    snapshots,
    statistics,
    users,
)
from gridwarden.hub.api import field as field_api
from gridwarden.hub.api.deps import ERROR_RESPONSES, HubServices
from gridwarden.hub.api.security_headers import SecurityHeaders
from gridwarden.hub.auth import UserStore
from gridwarden.hub.case_stats import case_counts_by_state, sla_overdue_counts
from gridwarden.hub.cases import STATES, CaseService
from gridwarden.hub.config_push import ConfigPublisher
from gridwarden.hub.db.engine import Database
from gridwarden.hub.dispatch.runtime import FieldWorkers
from gridwarden.hub.dispatch.settings import DispatchSettings
from gridwarden.hub.dispatch.wiring import build_field_services, mount_officer_app
from gridwarden.hub.dry_run import DryRunService
from gridwarden.hub.evidence_retention import EvidencePruner
from gridwarden.hub.evidence_store import EvidenceStore, RetentionPolicy
from gridwarden.hub.fleet import FleetService
from gridwarden.hub.ingest import HubIngestor
from gridwarden.hub.reports.wiring import build_city_services
from gridwarden.hub.resend_requests import ResendSettings
from gridwarden.hub.settings import HubSettings
from gridwarden.hub.webhooks import WebhookForwarder
from gridwarden.observability import HubMetrics, add_metrics_route

DESCRIPTION = """
The Gridwarden hub: the case queue fed by the edges' incidents, and the fleet's status.

Every endpoint except `/healthz` needs `Authorization: Bearer <token>`; tokens are issued with
`gridwarden users create NAME --role staff|integrator|admin`. Roles: **staff** read and move
cases; **integrator** read cases, edges and cameras; **admin** may do everything, including users.
"""

# Case states whose arrival is queued for the webhook forwarder when a webhook is configured.
WEBHOOK_STATES = ("confirmed",)

# Every router of the hub, in the order their routes are matched.
ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    cases.router,
    edges.router,
    cameras.router,
    users.router,
    reference.router,
    configs.router,
    config_documents.router,
    evidence.router,
    snapshots.router,
    dry_run.router,
    console.router,
    console_review.router,
    dead_letters.router,
    areas.router,
    officers.router,
    positions.router,
    field_api.router,
    dispatch.router,
    categories.router,
    qr_points.router,
    statistics.router,
    open311.router,
    resident_pages.router,
    city.router,
)


def _error_responses(router: APIRouter) -> dict[int | str, dict[str, Any]] | None:
    """The error answers ``router`` documents: none for /healthz (no token, no input), Open311's
    own error list for the GeoReport API, the hub's :class:`ErrorBody` for every other router."""
    if router is health.router:
        return None
    if router is open311.router:
        return open311.ERROR_RESPONSES
    return ERROR_RESPONSES


def create_app(services: HubServices, metrics: HubMetrics | None = None) -> FastAPI:
    """The web app over ``services``: every router in :data:`ROUTERS`, the console, ``/metrics``."""
    app = FastAPI(title="Gridwarden hub", version=__version__, description=DESCRIPTION)
    app.add_middleware(SecurityHeaders)
    app.state.services = services
    for router in ROUTERS:
        # Every router documents the hub's error answers (401/403/404/415/422...) with their body
        # model, so the OpenAPI document matches what the routes answer; /healthz takes no token.
        app.include_router(router, responses=_error_responses(router))
    if metrics is not None:
        add_metrics_route(app, metrics.registry)
    console.mount_console_pages(app)
    mount_officer_app(app)
    city.mount_city_pages(app)
    return app


def build_evidence_store(settings: HubSettings) -> EvidenceStore:
    """The evidence store the settings describe (its folder is created)."""
    return EvidenceStore(
        settings.resolved_evidence_root(),
        max_upload_bytes=settings.evidence_max_upload_bytes,
        quota_bytes_per_edge=settings.evidence_quota_bytes_per_edge,
        retention=RetentionPolicy(
            max_age_days=settings.evidence_retention_days, max_total_bytes=settings.evidence_max_total_bytes
        ),
    )


def _snapshot_requester(publisher: ConfigPublisher) -> Callable[[str, str, str], None]:
    """Ask an edge for a fresh camera picture (in the background: the broker's answer must not
    hold up the officer's request)."""

    def request(site: str, edge_id: str, camera: str) -> None:
        def send() -> None:
            try:
                publisher.request_snapshot(site, edge_id, camera, "dispatch")
            except Exception as exc:  # offline broker: the verification still works without it
                logging.getLogger(__name__).warning("snapshot request to %s failed: %s", edge_id, exc)

        threading.Thread(target=send, name="after-snapshot", daemon=True).start()

    return request


def build_config_publisher(settings: HubSettings) -> ConfigPublisher:
    """The hub's publisher of edge configurations and snapshot requests (not connected yet)."""
    return ConfigPublisher(
        host=settings.mqtt_host,
        port=settings.mqtt_port,
        username=settings.mqtt_username,
        password=settings.mqtt_password_value(),
        client_id=f"{settings.mqtt_client_id or f'hub-{settings.mqtt_group}'}-config",
        tls_ca=settings.mqtt_tls()[0],
        tls_cert=settings.mqtt_tls()[1],
        tls_key=settings.mqtt_tls()[2],
    )


def build_ingestor(settings: HubSettings, db: Database) -> HubIngestor:
    """The MQTT consumer the settings describe (not connected yet)."""
    return HubIngestor(
        db=db,
        mqtt_host=settings.mqtt_host,
        mqtt_port=settings.mqtt_port,
        group=settings.mqtt_group,
        client_id=settings.mqtt_client_id,
        username=settings.mqtt_username,
        password=settings.mqtt_password_value(),
        tls_ca=settings.mqtt_tls()[0],
        tls_cert=settings.mqtt_tls()[1],
        tls_key=settings.mqtt_tls()[2],
        batch_max=settings.batch_max,
        batch_wait_s=settings.batch_wait_s,
        merge_window_s=settings.merge_window_s,
        merge_iou=settings.merge_iou,
        resend=ResendSettings(settle_s=settings.replay_settle_s, retry_s=settings.replay_retry_s),
        request_resends=settings.request_replays,
    )


@dataclass
class Hub:
    """One hub process: its app, its services and its background workers."""

    settings: HubSettings
    app: FastAPI
    services: HubServices
    ingestor: HubIngestor
    metrics: HubMetrics
    pruner: EvidencePruner
    forwarder: WebhookForwarder | None
    field_workers: FieldWorkers
    owns_db: bool
    owns_publisher: bool
    _started: list[str] = field(default_factory=list)

    @property
    def db(self) -> Database:
        return self.services.db

    @property
    def evidence(self) -> EvidenceStore:
        assert self.services.evidence is not None
        return self.services.evidence

    def start(self) -> None:
        """Start the workers: config publisher (keeps retrying in the background), ingest,
        webhooks, evidence retention."""
        publisher = self.services.config_publisher
        if publisher is not None and self.owns_publisher:
            publisher.connect(timeout_s=0)
            self._started.append("publisher")
        self.ingestor.start()
        self._started.append("ingestor")
        if self.forwarder is not None:
            self.forwarder.start()
            self._started.append("forwarder")
        self.pruner.start()
        self._started.append("pruner")
        self.field_workers.start()
        self._started.append("field")
        if self.services.city is not None:
            self.services.city.start()
            self._started.append("city")

    def stop(self) -> None:
        """Stop in order: ingest (what arrived is stored and acknowledged, the rest stays on the
        broker), webhooks (undelivered ones stay queued), retention, publisher, dry runs; then
        close the database if the hub opened it. Safe to call twice, or without :meth:`start`."""
        if "ingestor" in self._started:
            self.ingestor.stop()
        if "field" in self._started:
            self.field_workers.stop()
        if "forwarder" in self._started and self.forwarder is not None:
            self.forwarder.stop()
        if "pruner" in self._started:
            self.pruner.stop()
        if "city" in self._started and self.services.city is not None:
            self.services.city.stop()  # the Open311 forwarder
        if self.owns_publisher and self.services.config_publisher is not None:
            self.services.config_publisher.close()
        self._started.clear()
        if self.services.dry_runs is not None:
            self.services.dry_runs.close()
        if self.owns_db:
            self.services.db.dispose()
            self.owns_db = False

    def __enter__(self) -> Hub:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()


def build_hub(
    settings: HubSettings,
    *,
    db: Database | None = None,
    config_publisher: ConfigPublisher | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Hub:
    """Everything a hub process runs, built from ``settings`` (nothing is started).

    For tests: ``db`` an open database the caller keeps owning (otherwise one is opened from
    ``settings.database_url``, migrated when ``settings.migrate``); ``config_publisher`` a
    connected publisher the caller owns (otherwise one is built from the MQTT settings and
    connected by :meth:`Hub.start`); ``clock`` the time cases and SLA figures are judged at.
    Raises ``OSError`` when the evidence folder cannot be created.
    """
    store = build_evidence_store(settings)
    owns_db = db is None
    database = db if db is not None else Database.open(settings.database_url, migrate=settings.migrate)
    try:
        metrics = HubMetrics()
        metrics.instrument_engine(database.engine)
        forwarder: WebhookForwarder | None = None
        secret = settings.webhook_secret_value()
        if settings.webhook_url and secret is not None:
            forwarder = WebhookForwarder(
                database,
                settings.webhook_url,
                secret,
                case_service=CaseService(database, sla_target_s=settings.sla_target_s, clock=clock),
                backoff=Backoff(settings.webhook_backoff_s, settings.webhook_backoff_max_s, jitter=0.1),
            )
        owns_publisher = config_publisher is None
        publisher = config_publisher if config_publisher is not None else build_config_publisher(settings)
        services = HubServices(
            db=database,
            cases=CaseService(
                database,
                merge_window_s=settings.merge_window_s,
                merge_iou=settings.merge_iou,
                sla_target_s=settings.sla_target_s,
                webhook_on=WEBHOOK_STATES if forwarder is not None else (),
                clock=clock,
            ),
            users=UserStore(database),
            fleet=FleetService(database),
            webhook_waker=forwarder,
            evidence=store,
            dry_runs=DryRunService(
                store.root.parent / "dry-runs",
                model_dir=Path(settings.model_dir) if settings.model_dir else None,
                max_upload_bytes=settings.dry_run_max_upload_bytes,
            ),
            config_publisher=publisher,
            field=build_field_services(database, store, settings=DispatchSettings.from_env(), clock=clock),
            city=build_city_services(settings, database),
        )
        assert services.field is not None
        services.field.dispatch.on_resolved = _snapshot_requester(publisher)
        field_workers = FieldWorkers(services.field, settings, settings.mqtt_password_value())
        metrics.registry.register(field_workers.collector)
        ingestor = build_ingestor(settings, database)
        metrics.watch_ingest(ingestor.stats)
        metrics.watch_cases(case_counts_by_state(database), states=STATES)
        metrics.watch_sla(sla_overdue_counts(database, target_s=settings.sla_target_s, clock=clock))
    except BaseException:
        if owns_db:
            database.dispose()
        raise
    app = create_app(services, metrics)
    # /healthz answers 503 when the ingest writer has died (see HubIngestor.health_problem).
    app.state.health_checks = [ingestor.health_problem]
    return Hub(
        settings=settings,
        app=app,
        services=services,
        ingestor=ingestor,
        metrics=metrics,
        pruner=EvidencePruner(store),
        forwarder=forwarder,
        field_workers=field_workers,
        owns_db=owns_db,
        owns_publisher=owns_publisher,
    )
