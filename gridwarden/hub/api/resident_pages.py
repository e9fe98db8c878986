"""The public report pages (no login): ``/r/{point}`` (form and submit), ``/r/status/{token}``.

Order of checks on a submit, cheapest first, so a flood costs the hub little: the point must exist
(one primary-key read), the client address and the point must be under their rate limits, the
declared body size must fit, and only then is the form read and the photo decoded -- on a worker
thread, at most ``wiring.PHOTO_WORKERS`` at a time, so photo decoding can never take every thread the
API answers other requests with. Every refusal is an HTML page in the reporter's language saying
what to do, with a 4xx status, and is counted in ``gridwarden_hub_reports_refused_total{reason}``.

The client address is the connection's peer as uvicorn reports it; behind a reverse proxy run
uvicorn with ``--proxy-headers --forwarded-allow-ips`` so it is the resident's, not the proxy's.
Limits are per hub process.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from gridwarden.hub import security_counters
from gridwarden.hub.api.deps import Services
from gridwarden.hub.evidence_store import EvidenceError
from gridwarden.hub.media_check import InvalidMedia
from gridwarden.hub.reports import pages
from gridwarden.hub.reports.categories import active_table
from gridwarden.hub.reports.photos import normalise_photo
from gridwarden.hub.reports.points import POINT_ID_PATTERN
from gridwarden.hub.reports.resident import MAX_NOTE_CHARS, NewReport, ReportRefused, store_photo
from gridwarden.hub.reports.wiring import City, CityServices

PointId = Annotated[str, Path(pattern=POINT_ID_PATTERN, max_length=64)]
FORM_OVERHEAD_BYTES = 64 * 1024


def _refused(reason: str) -> None:
    security_counters.count("gridwarden_hub_reports_refused_total", reason=reason)


router = APIRouter(tags=["resident reports"])


def _form_limits(city: CityServices) -> pages.FormLimits:
    return pages.FormLimits(max(city.limits.max_photo_bytes // (1024 * 1024), 1), MAX_NOTE_CHARS)


def html(text: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})


@router.get("/r/static/report.css", include_in_schema=False)
def report_css() -> PlainTextResponse:
    return PlainTextResponse(
        pages.stylesheet(), media_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
    )


@router.get("/r/{point_id}", response_class=HTMLResponse, summary="The report form of a QR point (public)")
def report_form(point_id: PointId, request: Request, city: City, lang: str | None = None) -> HTMLResponse:
    language = pages.pick_language(lang, request.headers.get("accept-language"))
    point = city.reports.point(point_id)
    if point is None:
        return html(pages.message_page(language, pages.t(language, "unknown_point")), 404)
    return html(
        pages.report_form(
            language, point_id=point.id, description=point.description,
            categories=active_table().resident_choices(), limits=_form_limits(city),
        )
    )  # fmt: skip


@router.post("/r/{point_id}", response_class=HTMLResponse, summary="Send a report at a QR point (public)")
async def submit_report(
    point_id: PointId, request: Request, city: City, services: Services, lang: str | None = None
) -> HTMLResponse:
    language = pages.pick_language(lang, request.headers.get("accept-language"))
    back = f"/r/{point_id}?lang={language}"

    def refuse(reason: str, status: int, text: str, headers: dict[str, str] | None = None) -> HTMLResponse:
        _refused(reason)
        why = pages.t(language, "refused", why=text)
        return html(pages.message_page(language, why, back_href=back), status, headers)

    point = await run_in_threadpool(city.reports.point, point_id)
    if point is None:
        _refused("unknown_point")
        return html(pages.message_page(language, pages.t(language, "unknown_point")), 404)
    client = request.client.host if request.client else "unknown"
    wait = city.by_client.hit(client)
    if wait:
        text = pages.t(language, "why.rate_client", wait=pages.wait_text(language, wait))
        return refuse("rate_client", 429, text, {"Retry-After": str(int(wait) + 1)})
    wait = city.by_point.hit(point_id)
    if wait:
        text = pages.t(language, "why.rate_point", wait=pages.wait_text(language, wait))
        return refuse("rate_point", 429, text, {"Retry-After": str(int(wait) + 1)})
    declared = request.headers.get("content-length")
    too_large = pages.t(language, "why.too_large", mb=_form_limits(city).max_photo_mb)
    if declared is None or not declared.isdigit():
        return refuse("no_length", 411, too_large)
    if int(declared) > city.limits.max_photo_bytes + FORM_OVERHEAD_BYTES:
        return refuse("too_large", 413, too_large)
    try:
        form = await request.form(max_files=1, max_fields=8, max_part_size=16384)
    except MultiPartException:
        return refuse("bad_form", 400, pages.t(language, "why.bad_form"))
    try:
        category = form.get("category")
        note = form.get("note")
        contact = form.get("contact")
        photo = form.get("photo")
        if not isinstance(category, str) or not category:
            return refuse("unknown_category", 422, pages.t(language, "why.unknown_category"))
        note_text = note.strip() if isinstance(note, str) else None
        contact_text = contact.strip() if isinstance(contact, str) else None
        try:
            city.reports.validate(category, note_text, contact_text)
        except ReportRefused as exc:
            key = f"why.{exc.code}"
            text = pages.t(language, key, n=MAX_NOTE_CHARS) if key in pages.TEXT[language] else str(exc)
            return refuse(exc.code, exc.status, text)
        photo_sha = None
        if isinstance(photo, UploadFile) and (photo.size or 0) > 0:
            store = services.evidence
            if store is None:
                return refuse("bad_photo", 422, pages.t(language, "why.bad_photo", detail="no photo store"))
            data = await photo.read(city.limits.max_photo_bytes + 1)
            if len(data) > city.limits.max_photo_bytes:
                return refuse("too_large", 413, too_large)
            async with city.photo_slots:
                try:
                    jpeg, photo_sha = await run_in_threadpool(normalise_photo, data)
                    await run_in_threadpool(store_photo, store, jpeg, photo_sha)
                except InvalidMedia as exc:
                    return refuse("bad_photo", 422, pages.t(language, "why.bad_photo", detail=str(exc)))
                except EvidenceError:
                    return refuse("photo_store", 503, pages.t(language, "why.busy"))
    finally:
        await form.close()
    client_hash = hmac.new(city.client_key_secret, client.encode(), hashlib.sha256).hexdigest()[:32]
    report = NewReport(
        source="resident", category=category, point_id=point_id, note=note_text or None,
        contact=contact_text or None, photo_sha256=photo_sha, client=client_hash,
    )  # fmt: skip
    try:
        receipt = await run_in_threadpool(city.reports.submit, report)
    except ReportRefused as exc:
        return refuse(exc.code, exc.status, str(exc))
    security_counters.count("gridwarden_hub_reports_total", outcome="joined" if receipt.joined else "opened")
    status_url = f"/r/status/{receipt.token}?lang={language}"
    return html(
        pages.receipt_page(language, case_id=receipt.case_id, joined=receipt.joined, status_url=status_url),
        201,
    )


@router.get(
    "/r/status/{token}", response_class=HTMLResponse, summary="A reporter's view of their case (public)"
)
def report_status(
    city: City,
    token: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")],
    request: Request,
    lang: Annotated[str | None, Query(max_length=8)] = None,
) -> HTMLResponse:
    language = pages.pick_language(lang, request.headers.get("accept-language"))
    status = city.reports.status(token)
    if status is None:
        return html(pages.message_page(language, pages.t(language, "unknown_token")), 404)
    entry = active_table().entry(status.category)
    name = (entry.name_zh if language == "zh-CN" else entry.name_en) if entry else status.category
    other = "en" if language == "zh-CN" else "zh-CN"
    return html(
        pages.status_page(
            language, case_id=status.case_id, state=status.state, category_name=name,
            reported_at=status.reported_at, updated_at=status.updated_at, note=status.status_note,
            other_lang_href=f"/r/status/{token}?lang={other}",
        )
    )  # fmt: skip
