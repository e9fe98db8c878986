"""Open311 GeoReport v2 at ``/open311/v2/``: services, service definitions, service requests
(list with filters, one, create), tokens, and media -- each in JSON (``.json``) and XML (``.xml``).

Shapes and field names follow the specification (http://wiki.open311.org/GeoReport_v2); errors
are the spec's ``[{"code": ..., "description": ...}]`` (``<errors><error>`` in XML) with 400, 403
or 404. Creating a request needs an ``api_key``: a hub user's token whose role may move cases
(``gridwarden users create city-system --role staff``). Reading is public, as the spec intends;
see :mod:`gridwarden.hub.reports.open311` for which cases are listed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, RootModel
from starlette.concurrency import run_in_threadpool

from gridwarden.hub.api.deps import ERROR_RESPONSES as HUB_ERROR_RESPONSES
from gridwarden.hub.api.deps import ErrorBody, HubServices, get_services
from gridwarden.hub.auth import Permission
from gridwarden.hub.reports.categories import active_table
from gridwarden.hub.reports.open311 import (
    DEFAULT_WINDOW_DAYS,
    QR_POINT_ATTRIBUTE,
    Open311Reader,
    RequestFilter,
    service,
    service_definition,
)
from gridwarden.hub.reports.resident import MAX_CONTACT_CHARS, NewReport, ReportRefused, ReportService

Format = Literal["json", "xml"]
MAX_POST_BYTES = 64 * 1024
MAX_IDS = 100
SINGULAR = {"attributes": "attribute", "values": "value"}


def _xml_value(parent: ET.Element, key: str, value: Any) -> None:
    el = ET.SubElement(parent, key)
    if isinstance(value, list):
        for item in value:
            _xml_fill(ET.SubElement(el, SINGULAR.get(key, key.rstrip("s"))), item)
    elif isinstance(value, dict):
        _xml_fill(el, value)
    elif isinstance(value, bool):
        el.text = "true" if value else "false"
    elif value is not None:
        el.text = str(value)


def _xml_fill(el: ET.Element, value: dict[str, Any]) -> None:
    for key, item in value.items():
        _xml_value(el, key, item)


def to_xml(root: str, item: str | None, data: Any) -> bytes:
    """Render a spec document: a list of ``item`` records under ``root``, or one record."""
    top = ET.Element(root)
    if item is None:
        _xml_fill(top, data)
    else:
        for record in data:
            _xml_fill(ET.SubElement(top, item), record)
    return b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(
        top, encoding="utf-8", xml_declaration=False
    )


def respond(fmt: str, data: Any, root: str, item: str | None, status: int = 200) -> Response:
    if fmt == "xml":
        return Response(to_xml(root, item, data), status_code=status, media_type="text/xml; charset=utf-8")
    import json

    return Response(json.dumps(data, ensure_ascii=False), status_code=status, media_type="application/json")


class Open311Error(BaseModel):
    """One error of the GeoReport v2 error list."""

    code: int
    description: str


class Open311ErrorBody(RootModel[list[Open311Error] | ErrorBody]):
    """GeoReport v2 errors are a list of ``{code, description}`` (what :func:`fail` answers); a
    request that does not fit the declared parameters still gets FastAPI's :class:`ErrorBody`."""


# What create_app documents for this router instead of the hub's ERROR_RESPONSES.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Open311ErrorBody, "description": entry["description"]}
    for code, entry in HUB_ERROR_RESPONSES.items()
}


def fail(fmt: str, status: int, description: str) -> Response:
    return respond(fmt, [{"code": status, "description": description}], "errors", "error", status)


def _time(fmt: str, name: str, value: str | None) -> datetime | Response | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return fail(fmt, 400, f"{name} must be a W3C date-time, e.g. 2025-03-01T08:00:00+08:00")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


router = APIRouter(prefix="/open311/v2", tags=["open311"])


def services_of(request: Request) -> HubServices:
    return get_services(request)  # the one place that knows where the services live


def reader(request: Request) -> Open311Reader:
    return Open311Reader(services_of(request).db, active_table(), media_base=str(request.base_url))


@router.get("/services.{fmt}", summary="GeoReport v2: the service list (city event categories)")
def list_services(fmt: Format, lang: Annotated[str, Query(pattern="^(zh-CN|en)$")] = "zh-CN") -> Response:
    return respond(fmt, [service(e, lang) for e in active_table().categories], "services", "service")


@router.get("/services/{service_code}.{fmt}", summary="GeoReport v2: one service's attributes")
def get_service(service_code: Annotated[str, Path(max_length=16)], fmt: Format) -> Response:
    entry = active_table().entry(service_code)
    if entry is None:
        return fail(fmt, 404, f"no service {service_code!r}")
    return respond(fmt, service_definition(entry), "service_definition", None)


@router.get("/requests.{fmt}", summary="GeoReport v2: service requests, filtered")
def list_requests(
    request: Request,
    fmt: Format,
    service_request_id: Annotated[str | None, Query(max_length=2000)] = None,
    service_code: Annotated[str | None, Query(max_length=2000)] = None,
    start_date: Annotated[str | None, Query(max_length=64)] = None,
    end_date: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    jurisdiction_id: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    ids: list[int] = []
    if service_request_id:
        parts = [p.strip() for p in service_request_id.split(",") if p.strip()]
        if len(parts) > MAX_IDS or not all(re.fullmatch(r"[0-9]{1,18}", p) for p in parts):
            return fail(fmt, 400, f"service_request_id: up to {MAX_IDS} comma-separated numeric ids")
        ids = [int(p) for p in parts]
    codes = [c.strip() for c in (service_code or "").split(",") if c.strip()]
    unknown = sorted(set(codes) - set(active_table().codes))
    if unknown:
        return fail(fmt, 400, f"unknown service_code {', '.join(unknown)[:100]}")
    if status not in (None, "open", "closed"):
        return fail(fmt, 400, "status must be open or closed")
    start = _time(fmt, "start_date", start_date)
    end = _time(fmt, "end_date", end_date)
    for value in (start, end):
        if isinstance(value, Response):
            return value
    assert not isinstance(start, Response) and not isinstance(end, Response)
    if not ids and start is None and end is None:  # the spec's default window
        start = datetime.now(UTC) - timedelta(days=DEFAULT_WINDOW_DAYS)
    records = reader(request).requests(
        RequestFilter(ids=ids, service_codes=codes, start=start, end=end, status=status)
    )
    return respond(fmt, records, "service_requests", "request")


@router.get("/requests/{request_id}.{fmt}", summary="GeoReport v2: one service request")
def get_request(request: Request, request_id: Annotated[str, Path(max_length=20)], fmt: Format) -> Response:
    if not re.fullmatch(r"[0-9]{1,18}", request_id):
        return fail(fmt, 404, f"no service request {request_id[:20]!r}")
    records = reader(request).requests(RequestFilter(ids=[int(request_id)]))
    if not records:
        return fail(fmt, 404, f"no service request {request_id}")
    return respond(fmt, records, "service_requests", "request")


@router.get("/tokens/{token}.{fmt}", summary="GeoReport v2: the service request id behind a token")
def get_token(request: Request, token: Annotated[str, Path(max_length=64)], fmt: Format) -> Response:
    case_id = reader(request).request_id_for_token(token)
    if case_id is None:
        return fail(fmt, 404, "no such token")
    return respond(fmt, [{"service_request_id": str(case_id), "token": token}], "service_requests", "request")


@router.post("/requests.{fmt}", summary="GeoReport v2: file a service request (api_key)")
async def create_request(request: Request, fmt: Format) -> Response:
    declared = request.headers.get("content-length", "")
    if not declared.isdigit() or int(declared) > MAX_POST_BYTES:
        return fail(
            fmt,
            400,
            f"send a form body (application/x-www-form-urlencoded) of at most {MAX_POST_BYTES} bytes",
        )
    body = await request.body()
    try:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
    except UnicodeDecodeError:
        return fail(fmt, 400, "the body is not UTF-8")
    services = services_of(request)
    principal = await run_in_threadpool(services.users.authenticate, form.get("api_key", ""))
    if principal is None or not principal.can(Permission.TRANSITION_CASES):
        return fail(fmt, 403, "api_key is missing, unknown, or may not file requests")
    code = form.get("service_code", "")
    if active_table().entry(code) is None:
        return fail(fmt, 400, f"service_code {code[:16]!r} is not a service (GET services.{fmt})")
    lat = lon = None
    if form.get("lat") or form.get("long"):
        try:
            lat, lon = float(form["lat"]), float(form["long"])
        except (KeyError, ValueError):
            return fail(fmt, 400, "lat and long must both be decimal degrees")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return fail(fmt, 400, "lat/long out of range")
    point_id = form.get(f"attribute[{QR_POINT_ATTRIBUTE}]") or None
    address = (form.get("address_string") or form.get("address_id") or "")[:500] or None
    if lat is None and address is None and point_id is None:
        return fail(fmt, 400, "a location is required: lat and long, address_string or address_id")
    media_url = form.get("media_url") or None
    if media_url is not None and (len(media_url) > 2000 or not media_url.startswith(("http://", "https://"))):
        return fail(fmt, 400, "media_url must be an http(s) URL of at most 2000 characters")
    name = " ".join(x for x in (form.get("first_name"), form.get("last_name")) if x)
    contact = (
        ", ".join(x for x in (name, form.get("email"), form.get("phone")) if x)[:MAX_CONTACT_CHARS] or None
    )
    report = NewReport(
        source="open311", category=code, point_id=point_id, note=form.get("description") or None,
        contact=contact, lat=lat, lon=lon, address=address, media_url=media_url,
        submitted_by=principal.username,
    )  # fmt: skip
    try:
        receipt = await run_in_threadpool(ReportService(services.db).submit, report)
    except ReportRefused as exc:
        return fail(fmt, 404 if exc.status == 404 else 400, str(exc))
    notice = "joined an open request at this point" if receipt.joined else "received"
    record = {"service_request_id": str(receipt.case_id), "service_notice": notice, "account_id": None}
    return respond(fmt, [record], "service_requests", "request")


@router.get("/media/{sha256}.jpg", summary="A request's picture (camera pictures need api_key)")
def media(
    request: Request,
    sha256: Annotated[str, Path(pattern="^[0-9a-f]{64}$")],
    api_key: Annotated[str | None, Query(max_length=256)] = None,
) -> Response:
    kind = reader(request).media_kind(sha256)
    store = services_of(request).evidence
    if kind is None or store is None or not store.exists(sha256):
        return fail("json", 404, "no such picture")
    if kind == "camera":
        principal = services_of(request).users.authenticate(api_key or "")
        if principal is None or not principal.can(Permission.READ_CASES):
            return fail("json", 403, "camera pictures need an api_key that may read cases")
    return FileResponse(
        store.path_for(sha256),
        media_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=3600"},
    )
