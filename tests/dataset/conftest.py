"""A real hub for the dataset-export tests: a migrated SQLite database filled through the real
ingest path (wire-contract incident events), cases moved by the real CaseService, and real JPEG
snapshots (frames of the car-park clip) uploaded into a real EvidenceStore."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from gridwarden.contract import EvidenceRef, IncidentEvent, IncidentObject, NormalisedBox, Topics
from gridwarden.hub.cases import CaseService
from gridwarden.hub.db import Database, upgrade_database
from gridwarden.hub.evidence_store import EvidenceStore
from gridwarden.hub.ingest import Outcome, ingest_payload
from tests.support.paths import CAR_CLIP


def _drawn_copy(jpeg: bytes) -> bytes:
    """The annotated snapshot's stand-in: the same picture with a box drawn, re-encoded as a
    whole JPEG (the hub stores only JPEGs that decode)."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    cv2.rectangle(image, (2, 2), (image.shape[1] - 3, image.shape[0] - 3), (0, 0, 255), 2)
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    return encoded.tobytes()


T0 = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)
SITE = "north"
EDGE = "edge-01"

Box = tuple[float, float, float, float]


@pytest.fixture(scope="session")
def car_frames() -> list[bytes]:
    """Nine JPEG-encoded frames spread over the car-park clip (distinct bytes, so distinct hashes)."""
    wanted = set(range(0, 321, 40))
    jpegs: list[bytes] = []
    with av.open(str(CAR_CLIP)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                ok, buf = cv2.imencode(
                    ".jpg", frame.to_ndarray(format="bgr24"), [cv2.IMWRITE_JPEG_QUALITY, 85]
                )
                assert ok
                jpegs.append(buf.tobytes())
            if i >= max(wanted):
                break
    assert len(jpegs) == len(wanted)
    return jpegs


@pytest.fixture(scope="session")
def hub_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied per test (migrating every time would cost seconds)."""
    path = tmp_path_factory.mktemp("dataset-hub") / "hub.db"
    upgrade_database(f"sqlite:///{path}")
    return path


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class FakeClock:
    """The CaseService's clock, set by the test so decision times are known exactly."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Hub:
    """Builds hub state the way production does: events through ingest, decisions through CaseService."""

    db: Database
    url: str
    store: EvidenceStore
    clock: FakeClock
    cases: CaseService
    seq: int = 0
    ingested_at: datetime = T0
    shas: dict[str, str] = field(default_factory=dict)  # incident id -> clean snapshot sha

    def upload(self, jpeg: bytes) -> str:
        sha = sha256_of(jpeg)
        with self.store.begin_upload(sha, "image/jpeg", declared_size=len(jpeg)) as up:
            up.write(jpeg)
            up.finish()
        return sha

    def _ingest(self, event: IncidentEvent) -> int:
        with self.db.write_session() as session, session.begin():
            result = ingest_payload(
                session, Topics(SITE, EDGE).incidents, event.model_dump_json().encode(), now=self.ingested_at
            )
        assert result.outcome is Outcome.STORED, result
        assert result.case_id is not None
        return result.case_id

    def incident(
        self,
        incident_id: str,
        *,
        jpeg: bytes,
        objects: list[tuple[str, Box]],
        zone: str = "kerb-a",
        camera: str = "cam-1",
        upload: bool = True,
        started: datetime = T0,
        updated_objects: list[tuple[str, Box]] | None = None,
        track_base: int = 1,
    ) -> int:
        """Ingest a ``started`` event carrying both snapshot refs (and optionally an ``updated``
        event with moved boxes and no evidence); upload the clean snapshot unless told not to.
        Returns the case id the incident landed in."""
        clean_sha = sha256_of(jpeg)
        annotated = _drawn_copy(jpeg)  # a real JPEG with another hash, never exported
        if upload:
            self.upload(jpeg)
        self.upload(annotated)  # always there: it must never stand in for a missing clean snapshot
        self.shas[incident_id] = clean_sha

        def event(
            kind: str, objs: list[tuple[str, Box]], at_s: float, evidence: list[EvidenceRef]
        ) -> IncidentEvent:
            self.seq += 1
            return IncidentEvent(
                event=kind,  # type: ignore[arg-type]
                incident_id=incident_id,
                seq=self.seq,
                site=SITE,
                edge_id=EDGE,
                camera=camera,
                zone=zone,
                rule="illegal_parking",
                classes=sorted({c for c, _ in objs}),
                objects=[
                    IncidentObject(
                        track_id=track_base + i,
                        class_name=c,
                        confidence=0.7,
                        box=NormalisedBox(x1=b[0], y1=b[1], x2=b[2], y2=b[3]),
                    )
                    for i, (c, b) in enumerate(objs)
                ],
                confidence=0.7,
                media_time=100.0 + at_s,
                started_media_time=100.0,
                dwell_s=60.0 + at_s,
                wall_time=started + timedelta(seconds=at_s),
                evidence=evidence,
            )

        refs = [
            EvidenceRef(kind="snapshot", sha256=clean_sha, size=len(jpeg), content_type="image/jpeg"),
            EvidenceRef(
                kind="snapshot_annotated",
                sha256=sha256_of(annotated),
                size=len(annotated),
                content_type="image/jpeg",
            ),
        ]
        case_id = self._ingest(event("started", objects, 0.0, refs))
        if updated_objects is not None:
            assert self._ingest(event("updated", updated_objects, 20.0, [])) == case_id
        return case_id

    def decide(
        self, case_id: int, decision: str, *, at: datetime, actor: str = "alice", reason: str | None = None
    ) -> None:
        """new -> in_review -> ``decision``, the decision stamped ``at``."""
        self.clock.now = at - timedelta(minutes=1)
        self.cases.transition(case_id, "in_review", actor=actor)
        self.clock.now = at
        self.cases.transition(case_id, decision, actor=actor, reason=reason)


@pytest.fixture
def hub(tmp_path: Path, hub_template: Path) -> Iterator[Hub]:
    path = tmp_path / "hub.db"
    shutil.copyfile(hub_template, path)
    url = f"sqlite:///{path}"
    db = Database(url)
    clock = FakeClock()
    try:
        yield Hub(
            db=db,
            url=url,
            store=EvidenceStore(tmp_path / "evidence"),
            clock=clock,
            cases=CaseService(db, clock=clock),
        )
    finally:
        db.dispose()


def read_labels(path: Path) -> np.ndarray:
    """A YOLO label file as an (n, 5) float array (empty file -> (0, 5))."""
    text = path.read_text()
    return np.array(
        [[float(v) for v in line.split()] for line in text.splitlines()], dtype=np.float64
    ).reshape(-1, 5)
