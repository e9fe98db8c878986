"""People's reports become cases: a resident at a QR point, or another system over Open311.

A report names a category (the city's event code) and carries an optional photo, note and
contact. It joins the open case of the same point and category if there is one (ten people
reporting the same bikes across a footpath are one case for the officer), else it opens a case
with source ``resident`` (or ``open311``) in state ``new``, in the same queue as the cameras'
cases. Each report gets an unguessable token: the reporter's link to the case's status, and the
Open311 ``token``.

Reports at one point are serialised by locking the point's row, so two reports arriving together
cannot open two cases.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridwarden.contract import utcnow
from gridwarden.hub.cases import MERGEABLE_STATES
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import Case, CaseHistory, CaseReport, QrPoint
from gridwarden.hub.evidence_store import EvidenceStore
from gridwarden.hub.reports.categories import active_table

RESIDENT_RULE = "resident_report"
OPEN311_RULE = "open311_request"
PHOTO_OWNER = "residents"
MAX_NOTE_CHARS = 500
MAX_CONTACT_CHARS = 64


class ReportRefused(ValueError):
    """A report the hub will not take; ``code`` is machine-readable, the message is for people."""

    def __init__(self, code: str, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class ReportReceipt:
    case_id: int
    token: str
    joined: bool


@dataclass(frozen=True)
class ReportStatus:
    """What a reporter may see of the case behind their token (nothing about other reporters)."""

    case_id: int
    state: str
    category: str
    reported_at: datetime
    updated_at: datetime
    point_id: str | None
    status_note: str | None


@dataclass(frozen=True)
class NewReport:
    source: str  # resident | open311
    category: str
    point_id: str | None = None
    note: str | None = None
    contact: str | None = None
    photo_sha256: str | None = None
    lat: float | None = None
    lon: float | None = None
    area_id: str | None = None
    address: str | None = None
    media_url: str | None = None
    client: str | None = None
    submitted_by: str | None = None


class ReportService:
    """Turns reports into cases (see the module docstring)."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def validate(self, category: str, note: str | None, contact: str | None) -> None:
        if category not in active_table().codes:
            raise ReportRefused("unknown_category", f"unknown category {category[:16]!r}")
        if note is not None and len(note) > MAX_NOTE_CHARS:
            raise ReportRefused(
                "note_too_long", f"the note has {len(note)} characters; at most {MAX_NOTE_CHARS}"
            )
        if contact is not None and len(contact) > MAX_CONTACT_CHARS:
            raise ReportRefused(
                "contact_too_long", f"the contact is longer than {MAX_CONTACT_CHARS} characters"
            )

    def point(self, point_id: str) -> QrPoint | None:
        with self.db.session() as session:
            return session.get(QrPoint, point_id)

    def submit(self, report: NewReport) -> ReportReceipt:
        """Store ``report``: join the open case of its point and category, or open one."""
        self.validate(report.category, report.note, report.contact)
        now = self.clock()
        token = secrets.token_urlsafe(24)
        with self.db.write_session() as session, session.begin():
            lat, lon, area_id = report.lat, report.lon, report.area_id
            if report.point_id is not None:
                point = session.scalar(select(QrPoint).where(QrPoint.id == report.point_id).with_for_update())
                if point is None:
                    raise ReportRefused(
                        "unknown_point", f"there is no QR point {report.point_id[:64]!r}", status=404
                    )
                lat, lon, area_id = point.lat, point.lon, point.area_id
            case = self._open_case(session, report) if report.point_id else None
            joined = case is not None
            if case is None:
                case = self._new_case(session, report, area_id, now)
                # Cases carry their own place once the hub has case locations (issue 13's places).
                for name, value in (("lat", lat), ("lon", lon), ("area_id", area_id)):
                    if hasattr(Case, name) and getattr(case, name, None) is None:
                        setattr(case, name, value)
            else:
                case.last_activity_at = now
                case.updated_at = now
            session.flush()  # the new case's id
            session.add(
                CaseReport(
                    case_id=case.id, source=report.source, point_id=report.point_id, category=report.category,
                    note=report.note or None, contact=report.contact or None, photo_sha256=report.photo_sha256,
                    lat=lat, lon=lon, area_id=area_id, address=report.address, media_url=report.media_url, token=token,
                    client=report.client, submitted_by=report.submitted_by, created_at=now,
                )
            )  # fmt: skip
            session.flush()
            return ReportReceipt(case_id=case.id, token=token, joined=joined)

    @staticmethod
    def _open_case(session: Session, report: NewReport) -> Case | None:
        return session.scalar(
            select(Case)
            .where(
                Case.report_point_id == report.point_id,
                Case.category == report.category,
                Case.state.in_(MERGEABLE_STATES),
            )
            .order_by(Case.id.desc())
            .limit(1)
            .with_for_update()
        )

    @staticmethod
    def _new_case(session: Session, report: NewReport, area_id: str | None, now: datetime) -> Case:
        where = f"QR point {report.point_id}" if report.point_id else f"{report.source} request"
        case = Case(
            state="new", site=area_id or "", edge_id="", camera="", zone=report.point_id or "",
            rule=RESIDENT_RULE if report.source == "resident" else OPEN311_RULE, classes=[],
            source=report.source, category=report.category, report_point_id=report.point_id,
            incident_count=0, detected_at=now, last_activity_at=now, created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(case)
        session.add(
            CaseHistory(
                case=case, at=now, actor=f"{report.source}:{report.submitted_by or 'public'}", from_state=None,
                to_state="new", reason=f"opened by a {report.source} report at {where}",
            )
        )  # fmt: skip
        return case

    def status(self, token: str) -> ReportStatus | None:
        """The case behind a reporter's token, or None (unknown token)."""
        if not token or len(token) > 64:
            return None
        with self.db.session() as session:
            row = session.execute(
                select(CaseReport, Case)
                .join(Case, Case.id == CaseReport.case_id)
                .where(CaseReport.token == token)
            ).first()
            if row is None:
                return None
            report, case = row
            note = session.scalar(
                select(CaseHistory.reason)
                .where(CaseHistory.case_id == case.id, CaseHistory.to_state == case.state)
                .order_by(CaseHistory.id.desc())
                .limit(1)
            )
            return ReportStatus(
                case_id=case.id, state=case.state, category=case.category, reported_at=report.created_at,
                updated_at=case.updated_at, point_id=report.point_id,
                status_note=note if case.state != "new" else None,
            )  # fmt: skip


def store_photo(store: EvidenceStore, jpeg: bytes, sha256: str) -> None:
    """Keep a normalised photo (see :mod:`.photos`) in the evidence store, under the residents'
    quota so a flood of photos cannot fill the disk the cameras' evidence needs."""
    with store.begin_upload(sha256, "image/jpeg", len(jpeg), owner=PHOTO_OWNER) as upload:
        upload.write(jpeg)
        upload.finish()
