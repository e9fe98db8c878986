"""Officer positions: parsing the three inputs, storing them with history, pruning old ones.

* **OwnTracks** JSON over MQTT on ``owntracks/<user>/<device>`` (``_type: location``, ``lat``,
  ``lon``, ``tst`` unix seconds, optional ``acc`` metres, ``vel`` km/h, ``batt`` percent). The
  user in the topic is the officer's user name; the broker's ACL lets each officer publish only
  under its own name, so the topic is trusted. Other ``_type`` messages (waypoints, cards) are
  ignored.
* **OsmAnd/Traccar** HTTP form (``id``, ``lat``, ``lon``, ``timestamp`` unix seconds or ISO 8601,
  ``speed`` knots, ``accuracy`` metres, ``batt``): what off-the-shelf tracker apps send.
* The officer **app**'s own geolocation (JSON, metres per second).

Every input is bounded: coordinates on Earth, a fix no more than five minutes in the future, no
older than the retention. A redelivered fix (same officer, source, time) is stored once, and an
older fix never replaces a newer "last known position".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from gridwarden.hub.db.models import Officer, OfficerPosition

OWNTRACKS_TOPIC = re.compile(r"^owntracks/([A-Za-z0-9][A-Za-z0-9_.@-]{0,127})/([A-Za-z0-9_.@-]{1,64})$")
OWNTRACKS_SUBSCRIPTION = "owntracks/+/+"
MAX_POSITION_PAYLOAD = 4096
MAX_FUTURE = timedelta(minutes=5)
KNOT_MPS = 0.514444
KMH_MPS = 1 / 3.6


class PositionError(ValueError):
    """A position report that is refused (the message says which field)."""


@dataclass(frozen=True)
class Fix:
    """One position report, already validated; ``who`` is a user name (OwnTracks, app) or a
    tracker id (OsmAnd), as ``by`` says."""

    who: str
    by: str  # username | tracker
    source: str  # owntracks | osmand | app
    fix_at: datetime
    lat: float
    lon: float
    accuracy_m: float | None = None
    speed_mps: float | None = None
    battery: int | None = None


def _number(values: Mapping[str, Any], name: str, *, required: bool = True) -> float | None:
    raw = values.get(name)
    if raw is None or raw == "":
        if required:
            raise PositionError(f"{name}: missing")
        return None
    if isinstance(raw, bool):
        raise PositionError(f"{name}: not a number")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise PositionError(f"{name}: {str(raw)[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise PositionError(f"{name}: not finite")
    return value


def _check(
    who: str, by: str, source: str, lat: float, lon: float, fix_at: datetime, now: datetime, **extra: Any
) -> Fix:
    if not -90 <= lat <= 90:
        raise PositionError(f"lat: {lat} is not within -90..90")
    if not -180 <= lon <= 180:
        raise PositionError(f"lon: {lon} is not within -180..180")
    if fix_at > now + MAX_FUTURE:
        raise PositionError(f"time: {fix_at.isoformat()} is in the future")
    acc = extra.get("accuracy_m")
    if acc is not None and not 0 <= acc <= 100_000:
        raise PositionError("accuracy: must be 0..100000 metres")
    speed = extra.get("speed_mps")
    if speed is not None and not 0 <= speed <= 200:
        extra["speed_mps"] = None  # trackers send -1 for "unknown"
    batt = extra.get("battery")
    if batt is not None:
        extra["battery"] = int(batt) if 0 <= batt <= 100 else None
    return Fix(who=who, by=by, source=source, fix_at=fix_at, lat=lat, lon=lon, **extra)


def parse_owntracks(topic: str, payload: bytes, now: datetime) -> Fix | None:
    """A fix from an OwnTracks message, None for other message types; raises PositionError."""
    m = OWNTRACKS_TOPIC.match(topic)
    if m is None:
        raise PositionError(f"topic {topic[:200]!r} is not owntracks/<user>/<device>")
    if len(payload) > MAX_POSITION_PAYLOAD:
        raise PositionError(f"payload of {len(payload)} bytes (at most {MAX_POSITION_PAYLOAD})")
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PositionError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise PositionError("not a JSON object")
    if body.get("_type") != "location":
        return None
    tst = _number(body, "tst")
    assert tst is not None
    try:
        fix_at = datetime.fromtimestamp(tst, UTC)
    except (OverflowError, OSError, ValueError):
        raise PositionError(f"tst: {tst} is not a time") from None
    vel = _number(body, "vel", required=False)
    lat, lon = _number(body, "lat"), _number(body, "lon")
    assert lat is not None and lon is not None
    return _check(
        m.group(1), "username", "owntracks", lat, lon, fix_at, now,
        accuracy_m=_number(body, "acc", required=False),
        speed_mps=None if vel is None else vel * KMH_MPS,
        battery=_number(body, "batt", required=False),
    )  # fmt: skip


def parse_osmand(params: Mapping[str, Any], now: datetime) -> Fix:
    """A fix from the OsmAnd/Traccar form (query string or form body); raises PositionError."""
    tracker = str(params.get("id") or params.get("deviceid") or "")
    if not re.match(r"^[A-Za-z0-9_.:-]{1,128}$", tracker):
        raise PositionError("id: missing or not a device id")
    raw_time = params.get("timestamp")
    fix_at = now
    if raw_time not in (None, ""):
        text = str(raw_time)[:40]
        try:
            seconds = float(text)
            fix_at = datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, UTC)
        except ValueError:
            try:
                fix_at = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise PositionError(f"timestamp: {text!r} is neither unix seconds nor ISO 8601") from None
            if fix_at.tzinfo is None:
                fix_at = fix_at.replace(tzinfo=UTC)
        except (OverflowError, OSError):
            raise PositionError("timestamp: out of range") from None
    speed = _number(params, "speed", required=False)
    lat, lon = _number(params, "lat"), _number(params, "lon")
    assert lat is not None and lon is not None
    return _check(
        tracker, "tracker", "osmand", lat, lon, fix_at, now,
        accuracy_m=_number(params, "accuracy", required=False),
        speed_mps=None if speed is None else speed * KNOT_MPS,
        battery=_number(params, "batt", required=False),
    )  # fmt: skip


def app_fix(
    username: str, lat: float, lon: float, at: datetime, now: datetime, accuracy_m: float | None = None
) -> Fix:
    return _check(username, "username", "app", lat, lon, at, now, accuracy_m=accuracy_m)


def _insert(session: Session) -> Any:
    return (pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(OfficerPosition)


def record_fixes(session: Session, fixes: Sequence[Fix], now: datetime) -> list[int | None]:
    """Store fixes (history, once each) and move each officer's last position forward.

    Three statements for a whole batch, whatever its size: one read of the officers it names,
    one multi-row insert of the history, one executemany update of the last positions.
    Returns the officer id each fix belonged to (None: no such officer; the fix is dropped)."""
    names = {f.who for f in fixes if f.by == "username"}
    trackers = {f.who for f in fixes if f.by == "tracker"}
    officers: dict[tuple[str, str], int] = {}
    last_fix: dict[int, datetime | None] = {}
    if names or trackers:
        cols = select(Officer.id, Officer.username, Officer.tracker_id, Officer.fix_at)
        stmt = cols.where(or_(Officer.username.in_(names or {""}), Officer.tracker_id.in_(trackers or {""})))
        for officer_id, username, tracker_id, fix_at in session.execute(stmt):
            if username in names:
                officers[("username", username)] = officer_id
            if tracker_id is not None and tracker_id in trackers:
                officers[("tracker", tracker_id)] = officer_id
            last_fix[officer_id] = fix_at
    rows: list[dict[str, Any]] = []
    owners: list[int | None] = []
    newest: dict[int, Fix] = {}
    for fix in fixes:
        owner = officers.get((fix.by, fix.who))
        owners.append(owner)
        if owner is None:
            continue
        officer_id = owner
        rows.append(
            {
                "officer_id": officer_id, "fix_at": fix.fix_at, "lat": fix.lat, "lon": fix.lon,
                "accuracy_m": fix.accuracy_m, "speed_mps": fix.speed_mps, "battery": fix.battery,
                "source": fix.source, "received_at": now,
            }
        )  # fmt: skip
        known = newest[officer_id].fix_at if officer_id in newest else last_fix.get(officer_id)
        if known is None or fix.fix_at > known:
            newest[officer_id] = fix
    if rows:
        session.execute(_insert(session).values(rows).on_conflict_do_nothing())
    if newest:
        session.execute(
            update(Officer),
            [
                {"id": oid, "lat": f.lat, "lon": f.lon, "fix_at": f.fix_at, "accuracy_m": f.accuracy_m}
                for oid, f in newest.items()
            ],
        )
    return owners


def prune_positions(session: Session, older_than: datetime) -> int:
    """Delete position history older than ``older_than`` (the officers' last positions stay)."""
    result = session.execute(delete(OfficerPosition).where(OfficerPosition.fix_at < older_than))
    return int(getattr(result, "rowcount", 0) or 0)
