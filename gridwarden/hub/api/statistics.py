"""``/api/v1/statistics``: the figures of :mod:`gridwarden.hub.reports.statistics` as JSON, and
as CSV tables (``counts.csv``, ``timeliness.csv``, ``stages.csv``, ``false-positives.csv``)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from gridwarden.hub.api.deps import IsoDatetime, Services, error, require
from gridwarden.hub.auth import Permission, Principal
from gridwarden.hub.reports.statistics import CaseStatistics
from gridwarden.hub.reports.wiring import City, CityServices

DEFAULT_DAYS = 30
MAX_DAYS = 400
Table = Literal["counts", "timeliness", "stages", "false-positives"]


Since = Annotated[IsoDatetime | None, Query(description="Detected at or after (default: 30 days ago).")]
Until = Annotated[IsoDatetime | None, Query(description="Detected before (default: now).")]
Bucket = Annotated[Literal["day", "week"], Query()]
GroupBy = Annotated[Literal["source", "category", "area", "camera", "zone"], Query()]
Tz = Annotated[
    str | None, Query(max_length=64, description="Days start at midnight here (default: the hub's).")
]
Closure = Annotated[float | None, Query(gt=0, le=365 * 86400, description="按期结案 limit in seconds.")]


router = APIRouter(prefix="/api/v1/statistics", tags=["statistics"])


async def compute(
    services: Services,
    city: CityServices,
    since: datetime | None,
    until: datetime | None,
    bucket: str,
    group_by: str,
    tz: str | None,
    closure_s: float | None,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    until = until or now
    since = since or until - timedelta(days=DEFAULT_DAYS)
    if since.tzinfo is None or until.tzinfo is None:
        raise error(
            422, "naive_time", "since and until must carry a time zone, e.g. 2026-11-01T00:00:00+08:00"
        )
    if not since < until or until - since > timedelta(days=MAX_DAYS):
        raise error(422, "bad_range", f"since must be before until, at most {MAX_DAYS} days apart")
    try:
        zone = ZoneInfo(tz or city.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise error(422, "unknown_timezone", f"unknown time zone {tz!r}, e.g. Asia/Shanghai") from exc
    stats = CaseStatistics(
        services.db,
        resolve_limit_s=services.cases.sla_policy.targets_s["resolved"],
        closure_limit_s=closure_s or city.closure_limit_s,
    )
    return await run_in_threadpool(
        lambda: stats.compute(since=since, until=until, now=now, bucket=bucket, group_by=group_by, tz=zone)
    )


@router.get("", summary="Case volumes, timeliness (按期结案率), stage times and false-positive rates")
async def get_statistics(
    services: Services,
    city: City,
    _: Annotated[Principal, Depends(require(Permission.READ_CASES))],
    since: Since = None,
    until: Until = None,
    bucket: Bucket = "day",
    group_by: GroupBy = "source",
    tz: Tz = None,
    closure_limit_s: Closure = None,
) -> dict[str, Any]:
    return await compute(services, city, since, until, bucket, group_by, tz, closure_limit_s)


@router.get("/{table}.csv", summary="One table of the statistics as CSV")
async def get_csv(
    table: Table,
    services: Services,
    city: City,
    _: Annotated[Principal, Depends(require(Permission.READ_CASES))],
    since: Since = None,
    until: Until = None,
    bucket: Bucket = "day",
    group_by: GroupBy = "source",
    tz: Tz = None,
    closure_limit_s: Closure = None,
) -> Response:
    data = await compute(services, city, since, until, bucket, group_by, tz, closure_limit_s)
    buffer = io.StringIO()
    w = csv.writer(buffer)
    if table == "counts":
        w.writerow(("bucket", group_by, "cases"))
        for entry in data["series"]:
            for key, n in sorted(entry["counts"].items()):
                w.writerow((entry["bucket"], key, n))
    elif table == "timeliness":
        w.writerow(("measure", "limit_s", "due", "on_time", "share"))
        for name in ("solved_within_limit", "on_time_closure"):
            t = data[name]
            w.writerow((name, t["limit_s"], t["due"], t["on_time"], "" if t["share"] is None else t["share"]))
    elif table == "stages":
        w.writerow(("stage", "median_s", "cases"))
        for name, s in data["stages"].items():
            w.writerow((name, "" if s["median_s"] is None else s["median_s"], s["cases"]))
    else:
        w.writerow(("by", "key", "decided", "rejected", "rate", "reasons"))
        for by, entries in data["false_positives"].items():
            for e in entries:
                reasons = "; ".join(f"{k}: {v}" for k, v in e["reasons"].items())
                w.writerow((by, e[by], e["decided"], e["rejected"], e["rate"], reasons))
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="statistics-{table}.csv"'},
    )
