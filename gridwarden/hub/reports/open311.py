"""The case queue as Open311 GeoReport v2 service requests (http://wiki.open311.org/GeoReport_v2).

* Services are the city's event categories (:mod:`.categories`): ``service_code`` is the event
  code (0505, ...), so a city system that speaks GeoReport v2 files requests under the codes it
  already uses. Each service has one optional attribute, ``QR_POINT``: a report at a posted point
  joins that point's open case like a resident's.
* A service request is a case. Status is ``open`` while someone may still act on it (new,
  in_review, confirmed, dispatched) and ``closed`` after (resolved, closed, rejected);
  ``status_notes`` is the reason written with the case's latest state change.
* Which cases are listed: people's reports (resident, open311) and camera cases an operator has
  confirmed. Unreviewed camera detections are not yet requests anyone filed.
* ``media_url``: a resident's (re-encoded) photo, or a confirmed camera case's snapshot, served
  by ``/open311/v2/media/{sha256}.jpg``; camera evidence there needs the api_key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from gridwarden.hub.cases import MERGEABLE_STATES
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import Case, CaseHistory, CaseIncident, CaseReport, Incident
from gridwarden.hub.reports.categories import CategoryEntry, CategoryTable

OPEN_STATES = frozenset(MERGEABLE_STATES)
MAX_REQUESTS = 1000
DEFAULT_WINDOW_DAYS = 90
QR_POINT_ATTRIBUTE = "QR_POINT"


def status_of(state: str) -> str:
    return "open" if state in OPEN_STATES else "closed"


def service(entry: CategoryEntry, lang: str) -> dict[str, Any]:
    return {
        "service_code": entry.code,
        "service_name": entry.name_zh if lang == "zh-CN" else entry.name_en,
        "description": f"{entry.name_zh} / {entry.name_en}",
        "metadata": True,
        "type": "realtime",
        "keywords": "数字城管, urban management",
        "group": "街面秩序",
    }


def service_definition(entry: CategoryEntry) -> dict[str, Any]:
    return {
        "service_code": entry.code,
        "attributes": [
            {
                "variable": True,
                "code": QR_POINT_ATTRIBUTE,
                "datatype": "string",
                "required": False,
                "datatype_description": "The id printed under a posted QR code, e.g. P-0001",
                "order": 1,
                "description": "QR point the report was made at (optional)",
                "values": [],
            }
        ],
    }


@dataclass(frozen=True)
class RequestFilter:
    ids: Sequence[int] = ()
    service_codes: Sequence[str] = ()
    start: datetime | None = None
    end: datetime | None = None
    status: str | None = None  # open | closed


class Open311Reader:
    """Reads cases as GeoReport v2 service request records."""

    def __init__(self, db: Database, table: CategoryTable, *, media_base: str) -> None:
        self.db = db
        self.table = table
        self.media_base = media_base.rstrip("/")

    @staticmethod
    def _listed() -> ColumnElement[bool]:
        return or_(Case.source != "camera", Case.confirmed_at.is_not(None))

    def requests(self, flt: RequestFilter) -> list[dict[str, Any]]:
        stmt = select(Case).where(self._listed())
        if flt.ids:
            stmt = stmt.where(Case.id.in_(list(flt.ids)))
        if flt.service_codes:
            stmt = stmt.where(Case.category.in_(list(flt.service_codes)))
        if flt.start is not None:
            stmt = stmt.where(Case.detected_at >= flt.start)
        if flt.end is not None:
            stmt = stmt.where(Case.detected_at <= flt.end)
        if flt.status == "open":
            stmt = stmt.where(Case.state.in_(sorted(OPEN_STATES)))
        elif flt.status == "closed":
            stmt = stmt.where(Case.state.not_in(sorted(OPEN_STATES)))
        stmt = stmt.order_by(Case.detected_at.desc(), Case.id.desc()).limit(MAX_REQUESTS)
        with self.db.session() as session:
            cases = list(session.scalars(stmt))
            return [self._record(session, c) for c in cases]

    def request_id_for_token(self, token: str) -> int | None:
        with self.db.session() as session:
            return session.scalar(select(CaseReport.case_id).where(CaseReport.token == token))

    def _record(self, session: Session, case: Case) -> dict[str, Any]:
        report = session.scalar(
            select(CaseReport).where(CaseReport.case_id == case.id).order_by(CaseReport.id).limit(1)
        )
        note = session.scalar(
            select(CaseHistory.reason)
            .where(
                CaseHistory.case_id == case.id,
                CaseHistory.to_state == case.state,
                CaseHistory.from_state.is_not(None),
            )
            .order_by(CaseHistory.id.desc())
            .limit(1)
        )
        entry = self.table.entry(case.category)
        media = self._media_sha(session, case, report)
        # The report's place, else the case's own once cases carry one (issue 13's places).
        lat = report.lat if report and report.lat is not None else getattr(case, "lat", None)
        lon = report.lon if report and report.lon is not None else getattr(case, "lon", None)
        address = (report.address if report else None) or (
            f"QR point {case.report_point_id}"
            if case.report_point_id
            else f"camera {case.camera}, zone {case.zone}"
        )
        return {
            "service_request_id": str(case.id),
            "status": status_of(case.state),
            "status_notes": note,
            "service_name": entry.name_zh if entry else case.category,
            "service_code": case.category,
            "description": (report.note if report else None) or f"{case.rule}: {', '.join(case.classes)}",
            "agency_responsible": None,
            "service_notice": None,
            "requested_datetime": case.detected_at.isoformat(),
            "updated_datetime": case.updated_at.isoformat(),
            "expected_datetime": None,
            "address": address,
            "address_id": None,
            "zipcode": None,
            "lat": lat,
            "long": lon,
            "media_url": f"{self.media_base}/open311/v2/media/{media}.jpg" if media else None,
        }

    @staticmethod
    def _media_sha(session: Session, case: Case, report: CaseReport | None) -> str | None:
        if report is not None and report.photo_sha256:
            return report.photo_sha256
        if case.source != "camera":
            return None
        rows = session.scalars(
            select(Incident.evidence)
            .join(CaseIncident, CaseIncident.incident_id == Incident.incident_id)
            .where(CaseIncident.case_id == case.id)
        )
        for evidence in rows:
            for ref in evidence or []:
                if ref.get("kind") == "snapshot" and ref.get("content_type") == "image/jpeg":
                    return str(ref["sha256"])
        return None

    def media_kind(self, sha256: str) -> str | None:
        """``public`` for a resident's photo, ``camera`` for a confirmed camera case's snapshot,
        None for anything else (never served)."""
        with self.db.session() as session:
            if session.scalar(select(func.count()).where(CaseReport.photo_sha256 == sha256)):
                return "public"
            for evidence in session.scalars(
                select(Incident.evidence)
                .join(CaseIncident, CaseIncident.incident_id == Incident.incident_id)
                .join(Case, Case.id == CaseIncident.case_id)
                .where(Case.confirmed_at.is_not(None), cast(Incident.evidence, String).contains(sha256))
            ):
                if any(
                    ref.get("sha256") == sha256 and ref.get("content_type") == "image/jpeg"
                    for ref in evidence or []
                ):
                    return "camera"
        return None
