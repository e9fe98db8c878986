"""``/api/v1/categories`` (the city's event codes in use) and ``/api/v1/exports/cases.csv``.

The export takes the case list's filters (state, camera, zone, rule, category, source, time) and
streams every matching case as CSV with its category code and both names, so a city clerk can
open it in a spreadsheet. It is bounded (:data:`MAX_EXPORT_ROWS`) and read in pages.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from gridwarden.hub.api.cases import CaseSource, _aware, _states, category_codes
from gridwarden.hub.api.deps import IsoDatetime, Services, error, require
from gridwarden.hub.auth import Permission, Principal
from gridwarden.hub.cases import MAX_PAGE, CaseService
from gridwarden.hub.reports.categories import active_table

router = APIRouter(tags=["categories"])
MAX_EXPORT_ROWS = 200_000
EXPORT_COLUMNS = (
    "id", "state", "source", "category", "category_zh", "category_en", "site", "edge_id", "camera", "zone",
    "rule", "classes", "report_point_id", "detected_at", "created_at", "updated_at", "sla_breached",
)  # fmt: skip


class CategoryView(BaseModel):
    code: str
    name_zh: str
    name_en: str
    rules: list[str]
    classes_any: list[str]
    resident: bool


@router.get(
    "/api/v1/categories", response_model=list[CategoryView], summary="The city event codes cases carry"
)
def list_categories(_: Annotated[Principal, Depends(require(Permission.READ_CASES))]) -> list[CategoryView]:
    return [CategoryView.model_validate(c.model_dump()) for c in active_table().categories]


def _rows(cases: CaseService, filters: dict[str, Any]) -> Iterator[str]:
    table = active_table()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    offset = 0
    while offset < MAX_EXPORT_ROWS:
        items, _total = cases.list_cases(**filters, sort="id", offset=offset, limit=MAX_PAGE)
        for c in items:
            entry = table.entry(c.category)
            writer.writerow(
                (
                    c.id, c.state, c.source, c.category, entry.name_zh if entry else "", entry.name_en if entry else "",
                    c.site, c.edge_id, c.camera, c.zone, c.rule, " ".join(c.classes), c.report_point_id or "",
                    c.detected_at.isoformat(), c.created_at.isoformat(), c.updated_at.isoformat(),
                    "yes" if c.sla.breached else "no",
                )
            )  # fmt: skip
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(items) < MAX_PAGE:
            return
        offset += MAX_PAGE


@router.get(
    "/api/v1/exports/cases.csv",
    summary="Cases as CSV (same filters as the case list), with the category code and names",
    response_class=StreamingResponse,
)
def export_cases(
    services: Services,
    _: Annotated[Principal, Depends(require(Permission.READ_CASES))],
    state: Annotated[list[str] | None, Query()] = None,
    camera: str | None = None,
    zone: str | None = None,
    rule: str | None = None,
    category: Annotated[list[str] | None, Query()] = None,
    source: CaseSource | None = None,
    since: IsoDatetime | None = None,
    until: IsoDatetime | None = None,
) -> StreamingResponse:
    filters: dict[str, Any] = {
        "state": _states(state), "camera": camera, "zone": zone, "rule": rule,
        "category": category_codes(category), "source": source,
        "since": _aware("since", since), "until": _aware("until", until),
    }  # fmt: skip
    if since and until and until <= since:
        raise error(422, "empty_range", "until must be after since")
    return StreamingResponse(
        _rows(services.cases, filters),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="cases.csv"'},
    )
