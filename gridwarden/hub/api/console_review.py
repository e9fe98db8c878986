"""The command centre's review routes: search, bulk decisions, "mark all reviewed", thumbnails and
clip previews, and the live camera wall.

Routes (JSON unless said otherwise):

* ``GET /api/v1/console/search`` — cases by id, camera, zone, rule, class, state, time range and
  free text over the reasons and notes of their history; with the counts of the two queues (cases
  that need a decision, and detections that do not).
* ``POST /api/v1/console/bulk`` — confirm or reject many cases with one reason; each case moves
  on its own (one failing does not stop the others) and the answer lists what happened to each.
* ``POST /api/v1/console/mark-reviewed`` — "mark all reviewed" for a camera: stamps
  ``reviewed_at``/``reviewed_by`` on its unreviewed cases (the decision, the state, is untouched).
* ``POST /api/v1/console/media-ticket`` and ``GET /api/v1/console/media/...?ticket=`` — a queue
  of 500 thumbnails cannot ask for 500 signed URLs; one short-lived ticket (scope ``media``) opens
  the thumbnail and preview clip of any case and the latest picture of any camera, for a user who
  may read cases anyway.
* ``GET /api/v1/console/live`` — every camera with its zones (from the configuration in force),
  its open cases and whether it has a picture, for the live view.

Why the free text is a LIKE over the history and not a full-text index: SQLite and PostgreSQL
disagree on full-text search, and the free text is always combined with the indexed filters
(state, camera, zone, rule, time: migration ``0006_console_review``), which keep the scan small.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from fastapi import APIRouter, Depends, Query, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import String, and_, cast, exists, func, or_, select, update
from starlette.concurrency import run_in_threadpool

from gridwarden.hub.api.deps import Evidence, HubServices, IsoDatetime, Services, error, require
from gridwarden.hub.api.evidence import evidence_file_response
from gridwarden.hub.api.snapshots import SNAPSHOT_DIR, Snapshots
from gridwarden.hub.auth import Permission, Principal
from gridwarden.hub.cases import STATES, CaseNotFound, IllegalTransition
from gridwarden.hub.config_store import ConfigStore, UnknownConfigVersion
from gridwarden.hub.db.models import Case, CaseHistory, CaseIncident, Incident
from gridwarden.hub.schemas import CaseView

MEDIA_SCOPE = "media"
MEDIA_TICKET_TTL_S = 15 * 60
MAX_RESULTS = 500
MAX_BULK = 500
DECISION_STATES = ("new", "in_review")
SNAPSHOTS_FOLDER = SNAPSHOT_DIR  # under the evidence store's root

Reader = Annotated[Principal, Depends(require(Permission.READ_CASES))]
Decider = Annotated[Principal, Depends(require(Permission.TRANSITION_CASES))]


class SearchResult(BaseModel):
    items: list[CaseView]
    total: int
    needs_decision: int = Field(description="Of the matches (ignoring the state filter): new or in review.")
    detections: int = Field(description="Of the matches (ignoring the state filter): decided or later.")


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_ids: list[int] = Field(min_length=1, max_length=MAX_BULK)
    action: Literal["confirm", "reject"]
    reason: str | None = Field(default=None, max_length=500)


class BulkOutcome(BaseModel):
    case_id: int
    ok: bool
    state: str | None = None
    message: str | None = None


class BulkResult(BaseModel):
    done: int
    failed: int
    outcomes: list[BulkOutcome]


class MarkReviewedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera: str = Field(min_length=1, max_length=64)
    edge_id: str | None = Field(default=None, max_length=64)


class MarkReviewedResult(BaseModel):
    camera: str
    marked: int


class MediaTicket(BaseModel):
    ticket: str
    expires_at: int


class LiveZone(BaseModel):
    id: str
    polygon: list[list[float]]
    masks: list[list[list[float]]] = []


class LiveCamera(BaseModel):
    edge_id: str
    site: str | None = Field(default=None, description="The edge's site (the area it watches).")
    camera_id: str
    state: str | None
    open_cases: int
    needs_decision: int
    zones: list[LiveZone]
    has_picture: bool
    picture_at: datetime | None = None


class LiveView(BaseModel):
    cameras: list[LiveCamera]
    edges: list[str]
    sites: list[str]
    as_of: datetime


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_statement(
    *,
    q: str | None,
    camera: str | None,
    zone: str | None,
    rule: str | None,
    object_class: str | None,
    since: datetime | None,
    until: datetime | None,
    reviewed: bool | None,
) -> Any:
    """The matching cases, without the state filter (the caller adds it and counts by state)."""
    stmt = select(Case)
    for column, value in ((Case.camera, camera), (Case.zone, zone), (Case.rule, rule)):
        if value:
            stmt = stmt.where(column == value)
    if since is not None:
        stmt = stmt.where(Case.detected_at >= since)
    if until is not None:
        stmt = stmt.where(Case.detected_at < until)
    if reviewed is not None:
        stmt = stmt.where(Case.reviewed_at.is_not(None) if reviewed else Case.reviewed_at.is_(None))
    if object_class:
        # classes is a JSON list; its text holds each name in double quotes on both databases.
        stmt = stmt.where(cast(Case.classes, String).like(_like(f'"{object_class}"'), escape="\\"))
    if q and q.strip():
        text = q.strip()
        terms = []
        digits = text.removeprefix("#")
        if digits.isdigit() and len(digits) <= 18:
            if text.startswith("#"):  # "#123" is a case id and nothing else: the primary key
                return stmt.where(Case.id == int(digits))
            terms.append(Case.id == int(digits))
        pattern = _like(text.lower())
        terms += [
            func.lower(Case.camera).like(pattern, escape="\\"),
            func.lower(Case.zone).like(pattern, escape="\\"),
            func.lower(Case.rule).like(pattern, escape="\\"),
            func.lower(cast(Case.classes, String)).like(pattern, escape="\\"),
            exists().where(
                and_(
                    CaseHistory.case_id == Case.id, func.lower(CaseHistory.reason).like(pattern, escape="\\")
                )
            ),
        ]
        stmt = stmt.where(or_(*terms))
    return stmt


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise error(422, "naive_datetime", "give times with a time zone, e.g. 2026-11-30T08:00:00+08:00")
    return value


def _latest_evidence(session: Any, case_id: int, kinds: tuple[str, ...]) -> str | None:
    rows = session.execute(
        select(Incident.evidence)
        .join(CaseIncident, CaseIncident.incident_id == Incident.incident_id)
        .where(CaseIncident.case_id == case_id)
        .order_by(Incident.started_at.desc())
    ).all()
    for kind in kinds:
        for (evidence,) in rows:
            for ref in evidence or []:
                if ref.get("kind") == kind and isinstance(ref.get("sha256"), str):
                    return str(ref["sha256"])
    return None


def _zones_by_camera(services: HubServices, edge_id: str) -> dict[str, list[LiveZone]]:
    try:
        text = ConfigStore(services.db).current(edge_id).yaml
    except UnknownConfigVersion:
        return {}
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return {}
    out: dict[str, list[LiveZone]] = {}
    for cam in document.get("cameras") or []:
        if not isinstance(cam, dict):
            continue
        zones = []
        for z in cam.get("zones") or []:
            try:
                zones.append(LiveZone(id=str(z["id"]), polygon=z["polygon"], masks=z.get("masks") or []))
            except (KeyError, TypeError, ValueError):
                continue
        out[str(cam.get("id"))] = zones
    return out


def live_view(services: HubServices, snapshots: Path | None) -> LiveView:
    with services.db.session() as session:
        counts = session.execute(
            select(Case.edge_id, Case.camera, Case.state, func.count())
            .where(Case.state.not_in(("closed",)))
            .group_by(Case.edge_id, Case.camera, Case.state)
        ).all()
    open_cases: dict[tuple[str, str], int] = {}
    deciding: dict[tuple[str, str], int] = {}
    for edge_id, camera, state, n in counts:
        key = (edge_id, camera)
        if state not in ("rejected", "resolved"):
            open_cases[key] = open_cases.get(key, 0) + n
        if state in DECISION_STATES:
            deciding[key] = deciding.get(key, 0) + n
    states = {(c.edge_id, c.camera_id): c.state for c in services.fleet.list_cameras()}
    sites = {e.edge_id: e.site for e in services.fleet.list_edges()}
    with services.db.session() as session:  # edges that never reported: the site of their cases
        for edge_id, site in session.execute(select(Case.edge_id, Case.site).distinct()):
            sites.setdefault(edge_id, site)
    keys = sorted(set(states) | set(open_cases) | set(deciding))
    zones = {edge: _zones_by_camera(services, edge) for edge in {k[0] for k in keys}}
    for edge, cams in zones.items():
        keys += [(edge, cam) for cam in cams if (edge, cam) not in keys]
    cameras = []
    for edge_id, camera_id in sorted(set(keys)):
        picture = snapshots / edge_id / f"{camera_id}.jpg" if snapshots is not None else None
        st = picture.stat() if picture is not None and picture.is_file() else None
        cameras.append(
            LiveCamera(
                edge_id=edge_id,
                site=sites.get(edge_id),
                camera_id=camera_id,
                state=states.get((edge_id, camera_id)),
                open_cases=open_cases.get((edge_id, camera_id), 0),
                needs_decision=deciding.get((edge_id, camera_id), 0),
                zones=zones.get(edge_id, {}).get(camera_id, []),
                has_picture=st is not None,
                picture_at=datetime.fromtimestamp(st.st_mtime, UTC) if st is not None else None,
            )
        )
    return LiveView(
        cameras=cameras,
        edges=sorted({c.edge_id for c in cameras}),
        sites=sorted({c.site for c in cameras if c.site}),
        as_of=services.cases.clock(),
    )


router = APIRouter(prefix="/api/v1/console", tags=["console"])


def _ticket_holder(services: HubServices, ticket: str | None) -> Principal:
    principal = services.users.verify_ticket(ticket, MEDIA_SCOPE) if ticket else None
    if principal is None or not principal.can(Permission.READ_CASES):
        raise error(
            status.HTTP_401_UNAUTHORIZED, "invalid_ticket", "missing, expired or revoked media ticket"
        )
    return principal


@router.get("/search", response_model=SearchResult, summary="Search cases (indexed filters + free text)")
def search(
    services: Services,
    _: Reader,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Case id, or text in camera, zone, rule, classes, reasons and notes",
        ),
    ] = None,
    state: Annotated[list[str] | None, Query(description=f"One or more of {', '.join(STATES)}")] = None,
    camera: Annotated[str | None, Query(max_length=64)] = None,
    zone: Annotated[str | None, Query(max_length=64)] = None,
    rule: Annotated[str | None, Query(max_length=32)] = None,
    object_class: Annotated[str | None, Query(alias="class", max_length=64)] = None,
    since: IsoDatetime | None = None,
    until: IsoDatetime | None = None,
    reviewed: bool | None = None,
    sort: Annotated[Literal["detected_at", "-detected_at"], Query()] = "detected_at",
    limit: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 200,
) -> SearchResult:
    states = list(state or [])
    unknown = set(states) - set(STATES)
    if unknown:
        raise error(422, "unknown_state", f"unknown state(s) {sorted(unknown)}", states=list(STATES))
    base = search_statement(
        q=q,
        camera=camera,
        zone=zone,
        rule=rule,
        object_class=object_class,
        since=_aware(since),
        until=_aware(until),
        reviewed=reviewed,
    )
    stmt = base.where(Case.state.in_(states)) if states else base
    order = Case.detected_at.desc() if sort.startswith("-") else Case.detected_at.asc()
    tiebreak = Case.id.desc() if sort.startswith("-") else Case.id.asc()
    now = services.cases.clock()
    with services.db.session() as session:
        matches = base.subquery()
        by_state: dict[str, int] = {
            s: n for s, n in session.execute(select(matches.c.state, func.count()).group_by(matches.c.state))
        }
        total = sum(n for s, n in by_state.items() if not states or s in states)
        rows = session.scalars(stmt.order_by(order, tiebreak).limit(limit)).all()
        items = [services.cases._view(row, now) for row in rows]  # noqa: SLF001 - the API's own view
    deciding = sum(n for s, n in by_state.items() if s in DECISION_STATES)
    return SearchResult(
        items=items,
        total=total,
        needs_decision=deciding,
        detections=sum(by_state.values()) - deciding,
    )


@router.post("/bulk", response_model=BulkResult, summary="Confirm or reject many cases with one reason")
def bulk(body: BulkRequest, services: Services, who: Decider) -> BulkResult:
    target = "confirmed" if body.action == "confirm" else "rejected"
    reason = body.reason if body.action == "reject" else None
    if body.action == "reject" and not (reason and reason.strip()):
        raise error(422, "reason_required", "a bulk rejection needs the reason")
    outcomes = []
    for case_id in dict.fromkeys(body.case_ids):
        try:
            detail = services.cases.get_case(case_id)
            if detail.state == "new":
                services.cases.transition(case_id, "in_review", actor=who.username)
            detail = services.cases.transition(case_id, target, actor=who.username, reason=reason)
            outcomes.append(BulkOutcome(case_id=case_id, ok=True, state=detail.state))
        except (CaseNotFound, IllegalTransition) as exc:
            outcomes.append(BulkOutcome(case_id=case_id, ok=False, message=str(exc)))
    if services.webhook_waker is not None and target in services.cases.webhook_on:
        services.webhook_waker.wake()
    done = sum(o.ok for o in outcomes)
    return BulkResult(done=done, failed=len(outcomes) - done, outcomes=outcomes)


@router.post(
    "/mark-reviewed",
    response_model=MarkReviewedResult,
    summary="Mark every unreviewed case of a camera reviewed",
)
def mark_reviewed(body: MarkReviewedRequest, services: Services, who: Decider) -> MarkReviewedResult:
    now = services.cases.clock()
    conditions = [Case.camera == body.camera, Case.reviewed_at.is_(None)]
    if body.edge_id:
        conditions.append(Case.edge_id == body.edge_id)
    with services.db.write_session() as session, session.begin():
        # updated_at moves too: the live stream tells every open console.
        result = session.execute(
            update(Case).where(*conditions).values(reviewed_at=now, reviewed_by=who.username, updated_at=now)
        )
        marked = int(getattr(result, "rowcount", 0) or 0)
    return MarkReviewedResult(camera=body.camera, marked=marked)


@router.post(
    "/media-ticket",
    response_model=MediaTicket,
    summary="One short-lived ticket for thumbnails and previews",
)
def media_ticket(services: Services, principal: Reader) -> MediaTicket:
    ticket, expires = services.users.issue_ticket(principal, MEDIA_SCOPE, ttl_s=MEDIA_TICKET_TTL_S)
    return MediaTicket(ticket=ticket, expires_at=expires)


async def case_media(
    case_id: int, kind: str, services: Services, store: Evidence, ticket: str | None = None
) -> FileResponse:
    if kind not in ("thumbnail", "preview"):
        raise error(status.HTTP_404_NOT_FOUND, "not_found", "kind is thumbnail or preview")
    await run_in_threadpool(_ticket_holder, services, ticket)
    kinds = ("snapshot_annotated", "snapshot") if kind == "thumbnail" else ("clip",)

    def find() -> str | None:
        with services.db.session() as session:
            return _latest_evidence(session, case_id, kinds)

    sha = await run_in_threadpool(find)
    if sha is None:
        raise error(status.HTTP_404_NOT_FOUND, "no_media", f"case {case_id} has no {kind}")
    return await evidence_file_response(
        store,
        sha,
        cache_control="private, max-age=900",
        extra_headers={"Referrer-Policy": "no-referrer"},
    )


router.add_api_route("/media/case/{case_id}/{kind}", case_media, methods=["HEAD"], include_in_schema=False)
router.add_api_route(
    "/media/case/{case_id}/{kind}",
    case_media,
    methods=["GET"],
    response_class=FileResponse,
    summary="A case's thumbnail (annotated snapshot) or preview (clip), by media ticket",
)


async def camera_picture(
    edge_id: str, camera_id: str, services: Services, snapshots: Snapshots, ticket: str | None = None
) -> FileResponse:
    await run_in_threadpool(_ticket_holder, services, ticket)
    path = snapshots.path(edge_id, camera_id)  # 404 for an invalid identifier
    if not path.is_file():
        raise error(status.HTTP_404_NOT_FOUND, "no_snapshot", f"no picture of {edge_id}/{camera_id} yet")
    return FileResponse(
        path,
        media_type="image/jpeg",
        headers={"Cache-Control": "private, no-cache", "X-Content-Type-Options": "nosniff"},
    )


router.add_api_route(
    "/media/camera/{edge_id}/{camera_id}", camera_picture, methods=["HEAD"], include_in_schema=False
)
router.add_api_route(
    "/media/camera/{edge_id}/{camera_id}",
    camera_picture,
    methods=["GET"],
    response_class=FileResponse,
    summary="A camera's latest picture, by media ticket (the live view)",
)


@router.get("/live", response_model=LiveView, summary="Cameras with zones, open cases and pictures")
def live(services: Services, _: Reader, snapshots: Snapshots) -> LiveView:
    return live_view(services, snapshots.root)
