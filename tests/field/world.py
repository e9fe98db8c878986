"""A small district for dispatch tests: areas, officers with positions, located cameras, cases."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gridwarden.contract import CameraLocation, CameraStatus
from gridwarden.hub.cases import CaseService
from gridwarden.hub.db.engine import Database
from gridwarden.hub.dispatch.service import DispatchService
from gridwarden.hub.dispatch.settings import DispatchSettings
from gridwarden.hub.officers.positions import Fix, record_fixes
from gridwarden.hub.officers.roster import OfficerSpec, Roster
from gridwarden.hub.places.areas import AreaStore, parse_geojson
from tests.field.geo import LAT0, LON0, district
from tests.hub.factories import EDGE, T0, incident_event
from tests.hub_api.conftest import ingest

# The camera stands in the east beat; 0.001 degrees of latitude is about 111 m.
CAMERA_AT = (LAT0 + 0.005, LON0 + 0.015)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass
class World:
    db: Database
    clock: Clock
    dispatch: DispatchService
    cases: CaseService
    roster: Roster
    officer_ids: dict[str, int] = field(default_factory=dict)
    seq: int = 0
    position_of_camera: tuple[float, float] = CAMERA_AT

    def officer(
        self, username: str, *, north_m: float, areas: tuple[str, ...] = (), transport: str = "foot",
        on_duty: bool = True,
    ) -> int:  # fmt: skip
        """An officer ``north_m`` metres north of the camera, with a fresh position."""
        view = self.roster.upsert(
            OfficerSpec(username=username, name=username.title(), areas=list(areas), transport=transport)
        )
        self.officer_ids[username] = view.id
        self.position(username, north_m=north_m)
        if on_duty:
            self.roster.set_duty(username, True, now=self.clock.now)
        return view.id

    def position(self, username: str, *, north_m: float, at: datetime | None = None) -> None:
        lat = CAMERA_AT[0] + north_m / 111_195.0
        fix = Fix(username, "username", "owntracks", at or self.clock.now, lat, CAMERA_AT[1])
        with self.db.write_session() as session, session.begin():
            record_fixes(session, [fix], self.clock.now)

    def camera(self, camera: str = "cam-1", at: tuple[float, float] = CAMERA_AT) -> None:
        ingest(
            self.db,
            CameraStatus(
                edge_id=EDGE, camera=camera, state="online",
                location=CameraLocation(lat=at[0], lon=at[1]), wall_time=self.clock.now,
            ),
        )  # fmt: skip

    def incident(
        self, camera: str = "cam-1", *, event: str = "started", incident_id: str = "inc-1"
    ) -> int | None:
        self.seq += 1
        return ingest(
            self.db,
            incident_event(
                seq=self.seq, incident_id=incident_id, camera=camera, event=event,
                started=self.clock.now, track_id=self.seq,
            ),
        )[0]  # fmt: skip

    def confirmed_case(self, camera: str = "cam-1", incident_id: str = "inc-1") -> int:
        case_id = self.incident(camera, incident_id=incident_id)
        assert case_id is not None
        self.cases.transition(case_id, "in_review", actor="op")
        self.cases.transition(case_id, "confirmed", actor="op")
        return case_id

    def events(self, case_id: int) -> list[tuple[str | None, str]]:
        detail = self.cases.get_case(case_id)
        return [(h.event, h.to_state) for h in detail.history]


def make_world(db: Database, **settings: object) -> World:
    clock = Clock()
    AreaStore(db).import_areas(parse_geojson(district()))
    world = World(
        db=db,
        clock=clock,
        dispatch=DispatchService(db, DispatchSettings.model_validate(settings), clock=clock),
        cases=CaseService(db, clock=clock),
        roster=Roster(db),
    )
    world.camera()
    return world
