"""Case statistics for the command centre and the city: volumes, timeliness, false positives.

All figures cover the cases *detected* in ``[since, until)`` (at most :data:`MAX_CASES`;
``truncated`` says when a period held more: ask for a shorter one). Definitions (so a number on the
page can be checked by hand):

* **counts**: cases per day or ISO week (in the district's time zone) by source, category, area,
  camera or zone.
* **solved within limit**: of the cases that were due to be solved (resolved, or unresolved and
  past the SLA target for resolution) and not rejected, the share resolved within the target.
* **按期结案率 (on-time closure rate)**: of the cases due to be closed (closed, or open and past the
  closure limit) and not rejected, the share closed within the limit.
* **median time per stage**: detected -> in review -> confirmed -> dispatched -> resolved ->
  closed, over the cases that reached both ends of the stage.
* **false-positive rate**: of the camera cases an operator decided (confirmed or rejected), the
  share rejected, per camera, zone and rule, with the rejection reasons counted, so integrators
  see where to tune.

>>> from datetime import UTC, datetime
>>> bucket_start(datetime(2026, 11, 30, 17, 0, tzinfo=UTC), "day", ZoneInfo("Asia/Shanghai"))
'2026-12-01'
>>> bucket_start(datetime(2026, 12, 3, 1, 0, tzinfo=UTC), "week", ZoneInfo("UTC"))
'2026-11-30'
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import Case, CaseHistory, CaseReport

GROUPS = ("source", "category", "area", "camera", "zone")
STAGES: tuple[tuple[str, str, str], ...] = (
    ("review", "detected_at", "in_review_at"),
    ("confirm", "in_review_at", "confirmed_at"),
    ("dispatch", "confirmed_at", "dispatched_at"),
    ("resolve", "dispatched_at", "resolved_at"),
    ("close", "resolved_at", "closed_at"),
)
MAX_CASES = 500_000
UTC_ZONE = ZoneInfo("UTC")


def bucket_start(at: datetime, bucket: str, tz: ZoneInfo) -> str:
    local = at.astimezone(tz).date()
    if bucket == "week":
        local = local - timedelta(days=local.weekday())
    return local.isoformat()


@dataclass(frozen=True)
class Timeliness:
    limit_s: float
    due: int
    on_time: int

    @property
    def share(self) -> float | None:
        return round(self.on_time / self.due, 4) if self.due else None

    def as_dict(self) -> dict[str, Any]:
        return {"limit_s": self.limit_s, "due": self.due, "on_time": self.on_time, "share": self.share}


def _timeliness(rows: list[dict[str, Any]], stamp: str, limit_s: float, now: datetime) -> Timeliness:
    due = on_time = 0
    for r in rows:
        if r["rejected_at"] is not None:
            continue
        reached = r[stamp]
        deadline = r["detected_at"] + timedelta(seconds=limit_s)
        if reached is None and now <= deadline:
            continue  # still has time
        due += 1
        if reached is not None and reached <= deadline:
            on_time += 1
    return Timeliness(limit_s, due, on_time)


def _false_positives(rows: list[dict[str, Any]], reasons: dict[int, str], key: str) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"decided": 0, "rejected": 0, "reasons": Counter()}
    )
    for r in rows:
        if r["source"] != "camera" or (r["confirmed_at"] is None and r["rejected_at"] is None):
            continue
        name = f"{r['camera']}/{r['zone']}" if key == "zone" else str(r[key])
        g = groups[name]
        g["decided"] += 1
        if r["rejected_at"] is not None:
            g["rejected"] += 1
            g["reasons"][reasons.get(r["id"], "(no reason)")] += 1
    out = [
        {
            key: name, "decided": g["decided"], "rejected": g["rejected"],
            "rate": round(g["rejected"] / g["decided"], 4), "reasons": dict(g["reasons"].most_common()),
        }
        for name, g in groups.items()
    ]  # fmt: skip
    return sorted(out, key=lambda x: (-x["rate"], -x["decided"], x[key]))


class CaseStatistics:
    """Computes the figures above from the database (one bounded read of the period's cases)."""

    def __init__(self, db: Database, *, resolve_limit_s: float, closure_limit_s: float) -> None:
        self.db = db
        self.resolve_limit_s = resolve_limit_s
        self.closure_limit_s = closure_limit_s

    def _rows(self, since: datetime, until: datetime) -> tuple[list[dict[str, Any]], dict[int, str]]:
        columns = [
            Case.id, Case.source, Case.category, Case.camera, Case.zone, Case.rule, Case.state,
            Case.detected_at, Case.in_review_at, Case.confirmed_at, Case.rejected_at, Case.dispatched_at,
            Case.resolved_at, Case.closed_at,
        ]  # fmt: skip
        # The case's own area once cases carry one (issue 13), else the reporter's point's area.
        case_area = getattr(Case, "area_id", None)
        area = (
            select(CaseReport.area_id).where(CaseReport.case_id == Case.id).order_by(CaseReport.id).limit(1)
        )
        stmt = (
            select(*columns, (case_area if case_area is not None else area.scalar_subquery()).label("area"))
            .where(Case.detected_at >= since, Case.detected_at < until)
            .order_by(Case.id)
            .limit(MAX_CASES)
        )
        with self.db.session() as session:
            rows = [dict(r._mapping) for r in session.execute(stmt)]
            rejected_ids = [r["id"] for r in rows if r["rejected_at"] is not None]
            reasons: dict[int, str] = {}
            for chunk in range(0, len(rejected_ids), 1000):
                for case_id, reason in session.execute(
                    select(CaseHistory.case_id, CaseHistory.reason)
                    .where(
                        CaseHistory.case_id.in_(rejected_ids[chunk : chunk + 1000]),
                        CaseHistory.to_state == "rejected",
                    )
                    .order_by(CaseHistory.id)
                ):
                    reasons[case_id] = (reason or "").strip()[:80] or "(no reason)"
        for r in rows:
            r["area"] = r["area"] or "(none)"
        return rows, reasons

    def compute(
        self, *, since: datetime, until: datetime, now: datetime, bucket: str = "day", group_by: str = "source",
        tz: ZoneInfo = UTC_ZONE,
    ) -> dict[str, Any]:  # fmt: skip
        if bucket not in ("day", "week") or group_by not in GROUPS:
            raise ValueError("bucket is day or week; group_by one of " + ", ".join(GROUPS))
        rows, reasons = self._rows(since, until)
        series: dict[str, Counter[str]] = defaultdict(Counter)
        totals: Counter[str] = Counter()
        for r in rows:
            key = str(r[group_by]) if r[group_by] not in (None, "") else "(none)"
            series[bucket_start(r["detected_at"], bucket, tz)][key] += 1
            totals[key] += 1
        stages = {}
        for name, start, end in STAGES:
            spans = [
                (r[end] - r[start]).total_seconds()
                for r in rows
                if r[start] is not None and r[end] is not None
            ]
            stages[name] = {
                "median_s": round(statistics.median(spans), 1) if spans else None,
                "cases": len(spans),
            }
        return {
            "since": since.isoformat(), "until": until.isoformat(), "tz": str(tz), "bucket": bucket,
            "group_by": group_by, "cases": len(rows), "truncated": len(rows) >= MAX_CASES,
            "series": [{"bucket": b, "counts": dict(series[b])} for b in sorted(series)],
            "totals": dict(totals.most_common()),
            "solved_within_limit": _timeliness(rows, "resolved_at", self.resolve_limit_s, now).as_dict(),
            "on_time_closure": _timeliness(rows, "closed_at", self.closure_limit_s, now).as_dict(),
            "stages": stages,
            "false_positives": {k: _false_positives(rows, reasons, k) for k in ("camera", "zone", "rule")},
        }  # fmt: skip
