"""Dispatch with an exact clock: nearest officer, timeout to the next, decline, escalation,
verification by camera, rework, reassignment, idempotent officer actions."""

from __future__ import annotations

import pytest

from gridwarden.hub.db.engine import Database
from gridwarden.hub.dispatch.service import TaskConflict
from tests.field.world import World, make_world


@pytest.fixture
def world(db: Database) -> World:
    return make_world(db, accept_timeout_s=60, verify_grace_s=120)


def offered_to(world: World, case_id: int) -> list[tuple[str, int]]:
    return [(t.state, t.officer_id) for t in world.dispatch.tasks_of_case(case_id)]


def test_nearest_free_officer_gets_the_offer_then_the_next_on_timeout(world: World) -> None:
    far = world.officer("far", north_m=900)
    near = world.officer("near", north_m=200)
    middle = world.officer("middle", north_m=500)
    world.officer("resting", north_m=50, on_duty=False)
    case_id = world.confirmed_case()
    report = world.dispatch.tick()
    assert (report.queued, report.offered) == (1, 1)
    assert offered_to(world, case_id) == [("offered", near)]
    assert world.roster.by_username("near").state == "offered"

    world.clock.advance(59)
    world.dispatch.tick()
    assert offered_to(world, case_id) == [("offered", near)]  # 59 s: still the first offer
    world.clock.advance(1)
    report = world.dispatch.tick()
    assert report.expired == 1
    assert offered_to(world, case_id) == [("expired", near), ("offered", middle)]
    assert world.roster.by_username("near").state == "available"
    task = world.dispatch.tasks_of_case(case_id)[1]
    world.dispatch.act("middle", task.id, "decline", reason="在处理另一起")
    world.dispatch.tick()
    assert offered_to(world, case_id)[-1] == ("offered", far)
    events = [e for e, _ in world.events(case_id) if e]
    assert events == ["queued", "offered", "offer_expired", "offered", "declined", "offered"]
    decline = [h for h in world.cases.get_case(case_id).history if h.event == "declined"][0]
    assert "在处理另一起" in (decline.reason or "")


def test_area_officers_first_and_stale_positions_do_not_count(world: World) -> None:
    outsider = world.officer("outsider", north_m=100)
    local = world.officer("local", north_m=800, areas=("beat-east",))
    stale = world.officer("stale", north_m=10, areas=("beat-east",))
    world.position("stale", north_m=10, at=world.clock.now)
    world.clock.advance(400)  # older than the 300 s freshness limit for stale...
    world.position("outsider", north_m=100)
    world.position("local", north_m=800)
    case_id = world.confirmed_case()
    world.dispatch.tick()
    assert offered_to(world, case_id) == [("offered", local)]
    assert stale not in {o for _, o in offered_to(world, case_id)} and outsider != local


def test_escalates_when_nobody_accepts_and_dispatcher_reassigns(world: World) -> None:
    only = world.officer("only", north_m=100)
    case_id = world.confirmed_case()
    world.dispatch.tick()
    world.clock.advance(60)
    report = world.dispatch.tick()
    assert report.escalated == 1 and world.dispatch.counters.escalations == 1
    entry = [q for q in world.dispatch.queue() if q.case_id == case_id][0]
    assert entry.status == "escalated" and "no officer accepted" in (entry.escalation_reason or "")
    task = world.dispatch.reassign(case_id, only, actor="dispatcher", reason="电话联系过")
    assert task.manual and task.state == "offered"
    world.dispatch.act("only", task.id, "accept")
    assert world.cases.get_case(case_id).state == "dispatched"


def test_concurrent_cases_most_urgent_first(db: Database) -> None:
    world = make_world(db, sla_limits_s={"static_object": 300})
    world.officer("solo", north_m=100)
    parking = world.confirmed_case(incident_id="a")
    world.camera("cam-2")
    from tests.hub.factories import incident_event
    from tests.hub_api.conftest import ingest

    world.seq += 1
    stall = ingest(db, incident_event(seq=world.seq, incident_id="b", camera="cam-2", rule="static_object",
                                      started=world.clock.now, track_id=99))[0]  # fmt: skip
    assert stall is not None
    world.cases.transition(stall, "in_review", actor="op")
    world.cases.transition(stall, "confirmed", actor="op")
    world.dispatch.tick()
    # The stall's 5-minute limit runs out before the car's 10 minutes: the one officer gets it.
    assert [t.state for t in world.dispatch.tasks_of_case(stall)] == ["offered"]
    assert world.dispatch.tasks_of_case(parking) == []


def test_resolved_then_camera_sees_it_gone_closes_verified(world: World) -> None:
    world.officer("ann", north_m=100)
    case_id = world.confirmed_case()
    world.dispatch.tick()
    task = world.dispatch.tasks_of_case(case_id)[0]
    world.clock.advance(20)
    world.dispatch.act("ann", task.id, "accept", key="k-accept")
    world.clock.advance(120)
    world.dispatch.act("ann", task.id, "arrive", key="k-arrive")
    world.clock.advance(60)
    resolved = world.dispatch.act("ann", task.id, "resolve", key="k-resolve", note="已劝离", photo="p1.jpg")
    assert resolved.state == "resolved" and world.roster.by_username("ann").state == "available"
    world.dispatch.tick()
    assert world.cases.get_case(case_id).state == "resolved"  # object still there, within grace
    world.clock.advance(30)
    world.incident(event="ended")
    world.dispatch.tick()
    detail = world.cases.get_case(case_id)
    assert detail.state == "closed"
    assert detail.history[-1].event == "verified" and "verified by camera" in (
        detail.history[-1].reason or ""
    )
    assert world.dispatch.tasks_of_case(case_id)[0].state == "verified"


def test_still_there_after_grace_goes_back_to_the_officer(world: World) -> None:
    world.officer("bob", north_m=100)
    case_id = world.confirmed_case()
    world.dispatch.tick()
    task = world.dispatch.tasks_of_case(case_id)[0]
    world.dispatch.act("bob", task.id, "accept")
    world.dispatch.act("bob", task.id, "resolve", note="done")
    world.clock.advance(119)
    world.dispatch.tick()
    assert world.cases.get_case(case_id).state == "resolved"
    world.clock.advance(1)
    report = world.dispatch.tick()
    assert report.reworked == 1
    assert world.cases.get_case(case_id).state == "dispatched"
    again = world.dispatch.tasks_of_case(case_id)[0]
    assert (again.state, again.rework_count) == ("accepted", 1)
    assert world.roster.by_username("bob").state == "en_route"
    queue = [q for q in world.dispatch.queue() if q.case_id == case_id][0]
    assert queue.rework_count == 1


def test_actions_are_idempotent_and_expired_offers_cannot_be_accepted(world: World) -> None:
    world.officer("cat", north_m=100)
    case_id = world.confirmed_case()
    world.dispatch.tick()
    task = world.dispatch.tasks_of_case(case_id)[0]
    first = world.dispatch.act("cat", task.id, "accept", key="same")
    second = world.dispatch.act("cat", task.id, "accept", key="same")
    assert first == second
    assert [e for e, _ in world.events(case_id)].count("accepted") == 1
    with pytest.raises(TaskConflict):
        world.dispatch.act("cat", task.id, "accept", key="other")

    world.officer("dan", north_m=50)
    world.camera("cam-2")
    late = world.confirmed_case(camera="cam-2", incident_id="late")
    world.dispatch.tick()
    offer = world.dispatch.tasks_of_case(late)[0]
    world.clock.advance(61)
    with pytest.raises(TaskConflict, match="expired"):
        world.dispatch.act("dan", offer.id, "accept")


def test_auto_dispatch_rules_skip_confirmation(db: Database) -> None:
    world = make_world(db, auto_dispatch_rules=["illegal_parking"])
    world.officer("eve", north_m=100)
    case_id = world.incident()
    assert case_id is not None
    world.dispatch.tick()
    assert world.cases.get_case(case_id).state == "confirmed"
    assert [t.state for t in world.dispatch.tasks_of_case(case_id)] == ["offered"]


def test_shift_windows_switch_duty_at_their_edges(world: World) -> None:
    from gridwarden.hub.officers.roster import OfficerSpec

    # T0 is 08:00 UTC = 16:00 in Shanghai: the day shift ends now, the night shift starts at 22:00.
    world.officer("day", north_m=100)
    world.roster.upsert(OfficerSpec(username="day", name="Day", shifts=["08:00-16:00"]))
    world.officer("night", north_m=200, on_duty=False)
    world.roster.upsert(OfficerSpec(username="night", name="Night", shifts=["22:00-06:00"]))
    world.dispatch.tick()
    assert world.roster.by_username("day").state == "off_duty"
    assert world.roster.by_username("night").state == "off_duty"
    world.roster.set_duty("night", True, now=world.clock.now)  # an officer may come in early
    world.clock.advance(60)
    world.dispatch.tick()
    assert world.roster.by_username("night").on_duty  # no edge crossed: the toggle stands
    world.roster.set_duty("night", False, now=world.clock.now)
    world.clock.advance(6 * 3600)  # 22:01
    world.dispatch.tick()
    assert world.roster.by_username("night").on_duty and not world.roster.by_username("day").on_duty


def test_a_case_without_camera_is_verified_by_a_reviewer(world: World) -> None:
    from gridwarden.hub.db.models import Case

    world.officer("fay", north_m=100)
    now = world.clock.now
    with world.db.write_session() as session, session.begin():
        case = Case(
            state="confirmed", site="north", edge_id="", camera="", zone="P-7", rule="static_object",
            classes=[], incident_count=0, detected_at=now, last_activity_at=now, created_at=now,
            updated_at=now, confirmed_at=now, lat=world.position_of_camera[0], lon=world.position_of_camera[1],
        )  # fmt: skip
        session.add(case)
        session.flush()
        case_id = case.id
    world.dispatch.tick()
    task = world.dispatch.tasks_of_case(case_id)[0]
    world.dispatch.act("fay", task.id, "accept")
    world.dispatch.act("fay", task.id, "resolve", note="已清理")
    world.clock.advance(600)
    world.dispatch.tick()
    assert world.cases.get_case(case_id).state == "resolved"  # no camera: no rework, no closing
    world.cases.transition(case_id, "closed", actor="reviewer", reason="照片核实")
    world.dispatch.tick()
    queue = world.dispatch.queue(("done",))
    assert [(q.case_id, q.verified_by) for q in queue] == [(case_id, "reviewer")]
    assert world.dispatch.tasks_of_case(case_id)[0].state == "verified"


def test_hostile_position_reports_are_refused() -> None:
    from datetime import UTC, datetime

    from gridwarden.hub.officers.positions import PositionError, parse_osmand, parse_owntracks

    now = datetime(2026, 1, 1, tzinfo=UTC)
    ok = b'{"_type": "location", "lat": 31.2, "lon": 121.4, "tst": 1767225600, "vel": 36, "batt": 50}'
    fix = parse_owntracks("owntracks/li/phone", ok, now)
    assert fix is not None and fix.who == "li" and abs((fix.speed_mps or 0) - 10.0) < 1e-9
    assert parse_owntracks("owntracks/li/phone", b'{"_type": "transition"}', now) is None
    for topic, payload, field in (
        ("owntracks/+/phone", ok, "topic"),
        ("owntracks/li/phone", b"x" * 5000, "payload"),
        ("owntracks/li/phone", b"[1]", "object"),
        ("owntracks/li/phone", ok.replace(b"31.2", b"91"), "lat"),
        ("owntracks/li/phone", ok.replace(b"1767225600", b"1767229200"), "future"),
        ("owntracks/li/phone", ok.replace(b"121.4", b'"NaN"'), "lon"),
        ("owntracks/li/phone", ok.replace(b'"tst": 1767225600', b'"tst": true'), "tst"),
    ):
        with pytest.raises(PositionError, match=field):
            parse_owntracks(topic, payload, now)
    with pytest.raises(PositionError, match="id"):
        parse_osmand({"id": "a/b", "lat": "1", "lon": "2"}, now)
    with pytest.raises(PositionError, match="timestamp"):
        parse_osmand({"id": "tracker-0000000001", "lat": "1", "lon": "2", "timestamp": "yesterday"}, now)
    fix = parse_osmand(
        {"id": "tracker-0000000001", "lat": "1", "lon": "2", "timestamp": "1767225600000"}, now
    )
    assert fix.fix_at == now  # milliseconds are understood too
