"""The command centre's review routes on a real hub (uvicorn, SQLite and PostgreSQL): search,
bulk decisions with one reason, "mark all reviewed" for a camera, thumbnails and previews by one
media ticket, and the live camera wall."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import httpx
from sqlalchemy import inspect

from gridwarden.contract import utcnow
from gridwarden.hub.api.console_review import SNAPSHOTS_FOLDER
from gridwarden.hub.config_store import ConfigStore
from tests.console.conftest import STAFF, Hub, first_frame_jpeg, incident_with_evidence, upload_evidence
from tests.hub.factories import incident_event
from tests.support.paths import CAR_CLIP


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _case(
    hub: Hub, seq: int, camera: str, zone: str, classes: tuple[str, ...] = ("car",), evidence=None
) -> int:  # noqa: ANN001
    started = utcnow() - timedelta(minutes=10) + timedelta(seconds=seq)
    if evidence is not None:
        event = incident_with_evidence(
            seq=seq,
            incident_id=f"rv-{seq}",
            camera=camera,
            zone=zone,
            started=started,
            evidence=evidence,
            track_id=seq,
        )
    else:
        event = incident_event(
            seq=seq,
            incident_id=f"rv-{seq}",
            camera=camera,
            zone=zone,
            started=started,
            track_id=seq,
            classes=classes,
        )
    return hub.ingest(event)


def search(hub: Hub, **params: object) -> dict:
    r = httpx.get(
        f"{hub.url}/api/v1/console/search", params=params, headers=bearer(hub.staff_token), timeout=10
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_search_bulk_and_mark_reviewed(live_hub: Hub) -> None:
    hub = live_hub
    a = _case(hub, 1, "cam-north", "kerb-a", ("car",))
    b = _case(hub, 2, "cam-north", "kerb-b", ("truck",))
    c = _case(hub, 3, "cam-south", "square", ("person",))
    d = _case(hub, 4, "cam-south", "market", ("bus",))

    # Structured filters and the two queues' counts.
    assert [i["id"] for i in search(hub, camera="cam-north")["items"]] == [a, b]
    assert [i["id"] for i in search(hub, **{"class": "truck"})["items"]] == [b]
    assert [i["id"] for i in search(hub, q=f"#{c}")["items"]] == [c]
    body = search(hub, state=["new", "in_review"])
    assert body["total"] == 4 and body["needs_decision"] == 4 and body["detections"] == 0

    # Bulk reject with one reason: every case through in_review, by this user, with the reason.
    r = httpx.post(
        f"{hub.url}/api/v1/console/bulk",
        json={"case_ids": [a, b, 999999], "action": "reject", "reason": "permitted: market day licence"},
        headers=bearer(hub.staff_token),
        timeout=30,
    )
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["done"] == 2 and result["failed"] == 1
    assert [o["case_id"] for o in result["outcomes"] if not o["ok"]] == [999999]
    from gridwarden.hub.cases import CaseService

    for case_id in (a, b):
        history = CaseService(hub.db).get_case(case_id).history
        assert [(h.to_state, h.actor, h.reason) for h in history[1:]] == [
            ("in_review", STAFF, None),
            ("rejected", STAFF, "permitted: market day licence"),
        ]
    # Free text finds the note of the reason; the counts split decided from undecided.
    assert [i["id"] for i in search(hub, q="LICENCE")["items"]] == [a, b]
    body = search(hub)
    assert body["needs_decision"] == 2 and body["detections"] == 2
    # A rejection without a reason is refused, and staff can bulk-confirm.
    assert (
        httpx.post(
            f"{hub.url}/api/v1/console/bulk",
            json={"case_ids": [c], "action": "reject"},
            headers=bearer(hub.staff_token),
        ).status_code
        == 422
    )
    ok = httpx.post(
        f"{hub.url}/api/v1/console/bulk",
        json={"case_ids": [c], "action": "confirm"},
        headers=bearer(hub.staff_token),
    )
    assert ok.json()["outcomes"] == [{"case_id": c, "ok": True, "state": "confirmed", "message": None}]

    # Mark all reviewed for one camera: only its cases, state untouched.
    r = httpx.post(
        f"{hub.url}/api/v1/console/mark-reviewed",
        json={"camera": "cam-south"},
        headers=bearer(hub.staff_token),
    )
    assert r.json() == {"camera": "cam-south", "marked": 2}
    reviewed = {i["id"]: i for i in search(hub, reviewed="true")["items"]}
    assert set(reviewed) == {c, d} and reviewed[d]["reviewed_by"] == STAFF and reviewed[d]["state"] == "new"
    assert {i["id"] for i in search(hub, reviewed="false")["items"]} == {a, b}
    # The search's filters are index-backed.
    indexes = {ix["name"] for ix in inspect(hub.db.engine).get_indexes("cases")}
    assert {
        "ix_cases_state_detected_at",
        "ix_cases_camera_detected_at",
        "ix_cases_camera_reviewed_at",
    } <= indexes


def test_thumbnails_previews_and_live_view_by_one_media_ticket(live_hub: Hub) -> None:
    hub = live_hub
    evidence = upload_evidence(hub)
    case_id = _case(hub, 10, "cam-east", "bus-lane", evidence=evidence)
    bare = _case(hub, 11, "cam-east", "kerb-z")
    ticket = httpx.post(f"{hub.url}/api/v1/console/media-ticket", headers=bearer(hub.staff_token)).json()[
        "ticket"
    ]
    thumb = httpx.get(f"{hub.url}/api/v1/console/media/case/{case_id}/thumbnail", params={"ticket": ticket})
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert hashlib.sha256(thumb.content).hexdigest() == evidence.snapshot.sha256
    preview = httpx.get(
        f"{hub.url}/api/v1/console/media/case/{case_id}/preview",
        params={"ticket": ticket},
        headers={"Range": "bytes=0-99"},
    )
    assert preview.status_code == 206 and len(preview.content) == 100
    assert (
        httpx.get(
            f"{hub.url}/api/v1/console/media/case/{bare}/thumbnail", params={"ticket": ticket}
        ).status_code
        == 404
    )
    assert httpx.get(f"{hub.url}/api/v1/console/media/case/{case_id}/thumbnail").status_code == 401
    assert (
        httpx.get(
            f"{hub.url}/api/v1/console/media/case/{case_id}/thumbnail", params={"ticket": ticket + "x"}
        ).status_code
        == 401
    )

    # The live view: the camera with its zones from the configuration in force and its picture.
    ConfigStore(hub.db).put(
        "edge-01",
        "edge_id: edge-01\nsite: north\ncameras:\n  - id: cam-east\n    url: rtsp://10.0.0.1/x\n    zones:\n"
        "      - id: bus-lane\n        polygon: [[0.1, 0.5], [0.9, 0.5], [0.9, 0.9], [0.1, 0.9]]\n"
        "        masks: [[[0.2, 0.6], [0.3, 0.6], [0.3, 0.7]]]\n"
        "        rules: [{type: static_object, dwell_s: 30}]\n",
        author="test",
    )
    picture = hub.evidence.root / SNAPSHOTS_FOLDER / "edge-01" / "cam-east.jpg"
    picture.parent.mkdir(parents=True, exist_ok=True)
    picture.write_bytes(first_frame_jpeg(CAR_CLIP))
    live = httpx.get(f"{hub.url}/api/v1/console/live", headers=bearer(hub.staff_token)).json()
    (cam,) = [c for c in live["cameras"] if c["camera_id"] == "cam-east"]
    assert live["sites"] == ["north"] and cam["site"] == "north"
    assert (
        cam["edge_id"] == "edge-01"
        and cam["has_picture"]
        and cam["open_cases"] == 2
        and cam["needs_decision"] == 2
    )
    assert cam["zones"][0]["id"] == "bus-lane" and len(cam["zones"][0]["masks"]) == 1
    jpeg = httpx.get(f"{hub.url}/api/v1/console/media/camera/edge-01/cam-east", params={"ticket": ticket})
    assert jpeg.status_code == 200 and jpeg.content == picture.read_bytes()
    assert (
        httpx.get(f"{hub.url}/api/v1/console/media/camera/edge-01/..", params={"ticket": ticket}).status_code
        == 404
    )
