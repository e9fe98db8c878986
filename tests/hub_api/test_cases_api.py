"""The case endpoints on a real app and a real database (both backends), fed by real ingest."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from gridwarden.hub.db.engine import Database
from tests.hub.factories import T0, incident_event
from tests.hub_api.conftest import SEED, bearer, ingest

CASES = "/api/v1/cases"


def _list(client: TestClient, token: str, **params: object) -> dict:
    response = client.get(CASES, params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def _ids(page: dict) -> list[int]:
    return [item["id"] for item in page["items"]]


def test_paging_returns_every_case_once_with_total(
    app_client: TestClient, tokens: dict, seeded: list[int]
) -> None:
    staff = tokens["staff"]
    pages = [_list(app_client, staff, offset=offset, limit=4) for offset in (0, 4, 8)]
    assert [p["total"] for p in pages] == [6, 6, 6]
    assert [(p["offset"], p["limit"]) for p in pages] == [(0, 4), (4, 4), (8, 4)]
    assert [len(p["items"]) for p in pages] == [4, 2, 0]
    assert sorted(_ids(pages[0]) + _ids(pages[1])) == sorted(seeded)


FILTERS: list[tuple[dict, list[int]]] = [
    ({"camera": "cam-1"}, [0, 1, 5]),
    ({"zone": "kerb-b"}, [4, 5]),
    ({"rule": "illegal_parking"}, [0, 1, 4]),
    ({"camera": "cam-1", "rule": "occupied_space"}, [5]),
    (
        {
            "since": (T0 + timedelta(minutes=20)).isoformat(),
            "until": (T0 + timedelta(minutes=40)).isoformat(),
        },
        [2, 3],
    ),
    ({"since": "2025-03-01T08:45:00Z"}, [5]),
    ({"until": "2025-03-01T10:10:00+02:00"}, [0]),  # 08:10Z, and until is exclusive
    ({"camera": "cam-9"}, []),
]


def test_filters(app_client: TestClient, tokens: dict, seeded: list[int]) -> None:
    for params, expected in FILTERS:
        page = _list(app_client, tokens["staff"], sort="detected_at", **params)
        assert _ids(page) == [seeded[i] for i in expected], params
        assert page["total"] == len(expected), params
        for item in page["items"]:
            camera, zone, rule, _ = SEED[seeded.index(item["id"])]
            assert (item["camera"], item["zone"], item["rule"]) == (camera, zone, rule)


def test_state_filter_and_sorting(app_client: TestClient, tokens: dict, seeded: list[int]) -> None:
    staff = tokens["staff"]
    moved = seeded[3]
    response = app_client.post(
        f"{CASES}/{moved}/transitions", json={"to": "in_review"}, headers=bearer(staff)
    )
    assert response.status_code == 200, response.text
    assert _ids(_list(app_client, staff, state="in_review")) == [moved]
    assert _list(app_client, staff, state="new")["total"] == 5
    assert _list(app_client, staff, state="new,in_review")["total"] == 6
    assert (
        app_client.get(
            CASES, params=[("state", "new"), ("state", "in_review")], headers=bearer(staff)
        ).json()["total"]
        == 6
    )

    ascending = _ids(_list(app_client, staff, sort="detected_at"))
    assert ascending == seeded  # SEED is in detection order
    assert _ids(_list(app_client, staff, sort="-detected_at")) == seeded[::-1]
    # Ties on the sort key are broken by id, so paging over a sorted list is stable.
    by_state = _list(app_client, staff, sort="state")["items"]
    assert [i["state"] for i in by_state] == ["in_review"] + ["new"] * 5
    assert _ids(_list(app_client, staff, sort="-updated_at", limit=1)) == [moved]


BAD_LIST_PARAMS = [
    {"sort": "colour"},
    {"state": "lost"},
    {"limit": 0},
    {"limit": 501},
    {"offset": -1},
    {"since": "2025-03-01T08:00:00"},  # no time zone: ambiguous
    {"until": "yesterday"},
]


def test_bad_list_parameters_are_422(app_client: TestClient, tokens: dict) -> None:
    for params in BAD_LIST_PARAMS:
        response = app_client.get(CASES, params=params, headers=bearer(tokens["staff"]))
        assert response.status_code == 422, (params, response.text)
    detail = app_client.get(CASES, params={"state": "lost"}, headers=bearer(tokens["staff"])).json()["detail"]
    assert detail["error"] == "unknown_state" and "in_review" in detail["message"]


def test_one_case_with_incidents_and_history(app_client: TestClient, tokens: dict, db: Database) -> None:
    first = incident_event(seq=1, incident_id="car-a", started=T0)
    again = incident_event(seq=2, incident_id="car-a", event="updated", started=T0, at_s=30)
    # The same car found again after an occlusion: a new incident that joins the same case.
    rejoined = incident_event(seq=3, incident_id="car-a2", started=T0 + timedelta(seconds=60), track_id=99)
    case_id, same, joined = ingest(db, first, again, rejoined)
    assert case_id == same == joined

    response = app_client.get(f"{CASES}/{case_id}", headers=bearer(tokens["integrator"]))
    assert response.status_code == 200, response.text
    case = response.json()
    assert case["state"] == "new" and case["incident_count"] == 2
    assert [i["incident_id"] for i in case["incidents"]] == ["car-a", "car-a2"]
    assert case["incidents"][0]["event_count"] == 2
    assert [(h["actor"], h["from_state"], h["to_state"]) for h in case["history"]] == [
        ("system", None, "new")
    ]
    assert case["allowed_transitions"] == ["in_review"]
    assert "confirmed" in case["sla"]["milestones"]


def test_unknown_case_is_404(app_client: TestClient, tokens: dict) -> None:
    for response in (
        app_client.get(f"{CASES}/4242", headers=bearer(tokens["staff"])),
        app_client.post(
            f"{CASES}/4242/transitions", json={"to": "in_review"}, headers=bearer(tokens["staff"])
        ),
    ):
        assert response.status_code == 404
        assert response.json()["detail"] == {
            "error": "case_not_found",
            "message": "case 4242 does not exist",
            "case_id": 4242,
        }


def test_transitions_record_the_authenticated_user(
    app_client: TestClient, tokens: dict, seeded: list[int]
) -> None:
    case_id = seeded[0]
    steps = [
        ("staff", "in_review", None),
        ("admin", "confirmed", "plate visible"),
        ("staff", "dispatched", "unit 7"),
    ]
    for role, to, reason in steps:
        response = app_client.post(
            f"{CASES}/{case_id}/transitions", json={"to": to, "reason": reason}, headers=bearer(tokens[role])
        )
        assert response.status_code == 200, response.text
        assert response.json()["state"] == to
    case = app_client.get(f"{CASES}/{case_id}", headers=bearer(tokens["staff"])).json()
    assert [(h["actor"], h["from_state"], h["to_state"], h["reason"]) for h in case["history"]] == [
        ("system", None, "new", "opened by incident inc-0"),
        ("staff-user", "new", "in_review", None),
        ("admin-user", "in_review", "confirmed", "plate visible"),
        ("staff-user", "confirmed", "dispatched", "unit 7"),
    ]
    assert case["allowed_transitions"] == ["resolved"]
    assert case["sla"]["time_to_confirm_s"] is not None


def test_illegal_transition_is_409_naming_the_allowed_targets(
    app_client: TestClient, tokens: dict, seeded: list[int]
) -> None:
    case_id = seeded[0]
    response = app_client.post(
        f"{CASES}/{case_id}/transitions", json={"to": "confirmed"}, headers=bearer(tokens["staff"])
    )
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail["error"] == "illegal_transition"
    assert (detail["from"], detail["to"], detail["allowed"]) == ("new", "confirmed", ["in_review"])
    assert (
        "'new'" in detail["message"]
        and "'confirmed'" in detail["message"]
        and "in_review" in detail["message"]
    )
    # Nothing changed.
    case = app_client.get(f"{CASES}/{case_id}", headers=bearer(tokens["staff"])).json()
    assert case["state"] == "new" and len(case["history"]) == 1


def test_final_state_allows_nothing(app_client: TestClient, tokens: dict, seeded: list[int]) -> None:
    case_id, headers = seeded[1], bearer(tokens["staff"])
    for to in ("in_review", "rejected", "closed"):
        assert (
            app_client.post(f"{CASES}/{case_id}/transitions", json={"to": to}, headers=headers).status_code
            == 200
        )
    response = app_client.post(f"{CASES}/{case_id}/transitions", json={"to": "in_review"}, headers=headers)
    assert response.status_code == 409
    assert response.json()["detail"]["allowed"] == []
    assert "final state" in response.json()["detail"]["message"]


MALFORMED_BODIES = [
    {"to": "teleported"},
    {},
    {"to": "in_review", "colour": "red"},
    {"to": "in_review", "reason": "x" * 2001},
]


def test_malformed_transition_body_is_422(app_client: TestClient, tokens: dict, seeded: list[int]) -> None:
    for body in MALFORMED_BODIES:
        response = app_client.post(
            f"{CASES}/{seeded[0]}/transitions", json=body, headers=bearer(tokens["staff"])
        )
        assert response.status_code == 422, body
    assert app_client.get(f"{CASES}/{seeded[0]}", headers=bearer(tokens["staff"])).json()["state"] == "new"
