"""``/api/v1/positions/osmand``: positions from off-the-shelf tracker apps (OsmAnd/Traccar form).

Traccar Client and OsmAnd's trip recording send ``?id=DEVICE&lat=..&lon=..&timestamp=..&speed=..``
by GET or POST (query or form body) and cannot send an ``Authorization`` header. The device id
is therefore the credential: an admin sets a long random ``tracker_id`` on the officer (16-128
characters, ``PUT /api/v1/officers/{username}``) and types the same into the app. An unknown id
gets 404 and nothing is stored. Answers are empty 200s, as those apps expect.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from starlette.concurrency import run_in_threadpool

from gridwarden.contract import utcnow
from gridwarden.hub.api.deps import error
from gridwarden.hub.dispatch.wiring import FieldServices, get_field
from gridwarden.hub.officers.positions import PositionError, parse_osmand, record_fixes

router = APIRouter(prefix="/api/v1/positions", tags=["officers"])
MAX_FORM_BYTES = 4096


def _store(field: FieldServices, params: dict[str, Any]) -> None:
    now = utcnow()
    try:
        fix = parse_osmand(params, now)
    except PositionError as exc:
        raise error(status.HTTP_400_BAD_REQUEST, "bad_position", str(exc)) from exc
    with field.db.write_session() as session, session.begin():
        owners = record_fixes(session, [fix], now)
    if owners[0] is None:
        raise error(status.HTTP_404_NOT_FOUND, "unknown_device", "no officer has this tracker id")


@router.get(
    "/osmand", summary="A position in the OsmAnd/Traccar form (query string)", operation_id="osmand_get"
)
@router.post(
    "/osmand",
    summary="A position in the OsmAnd/Traccar form (query or form body)",
    operation_id="osmand_post",
)
async def osmand(request: Request, field: Annotated[FieldServices, Depends(get_field)]) -> Response:
    params: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise error(status.HTTP_413_CONTENT_TOO_LARGE, "too_large", f"at most {MAX_FORM_BYTES} bytes")
        if body:
            from urllib.parse import parse_qsl

            try:
                params |= dict(parse_qsl(body.decode("utf-8"), max_num_fields=20))
            except (UnicodeDecodeError, ValueError) as exc:
                raise error(status.HTTP_400_BAD_REQUEST, "bad_form", str(exc)) from exc
    await run_in_threadpool(_store, field, params)
    return Response(status_code=200)
