"""Dry runs over the API: the same incidents as ``gridwarden edge replay``, a diff against the
configuration in force, annotated videos that decode, and clear refusals of bad requests."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import av
import pytest
from fastapi.testclient import TestClient

from gridwarden.hub.config_store import ConfigStore
from gridwarden.hub.db.engine import Database
from gridwarden.hub.db.models import Incident
from gridwarden.hub.dry_run import DryRunService, diff_incidents
from gridwarden.hub.evidence_store import EvidenceStore
from tests.dry_run.conftest import CAMERA, DWELL_S, EDGE, TOP_ZONE, auth, parking_yaml, wait_done, zone_yaml
from tests.support.paths import REPO_ROOT, YOLOX_NANO
from tests.support.scenarios import ParkedCarScenario

URL = f"/api/v1/edges/{EDGE}/cameras/{CAMERA}/dry-runs"
COMPARED = ("event", "zone", "rule", "media_time")


def cli_replay(clip: Path, config_text: str, tmp_path: Path) -> list[dict]:
    """What ``gridwarden edge replay`` prints for the clip and configuration (one JSON event a line)."""
    config = tmp_path / "edge.yaml"
    config.write_text(config_text)
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("gridwarden")),
            "edge",
            "replay",
            str(clip),
            "--config",
            str(config),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
        check=True,
    )
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def key(e: dict) -> tuple:
    return (e["event"], e["zone"], e["rule"], round(e["media_time"], 3))


def decoded_frames(data: bytes, path: Path) -> int:
    path.write_bytes(data)
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.mark.slow
def test_upload_dry_run_matches_cli_and_diffs_changed_zones(
    client: TestClient, db: Database, tokens: dict[str, str], parked_car: ParkedCarScenario, tmp_path: Path
) -> None:
    integrator = auth(tokens["integrator"])
    current_text = parking_yaml()
    ConfigStore(db).put(EDGE, current_text, author="test")
    # Keeps no-parking, adds kerb-west (same place, dwell 5 s) and top-strip (where nobody stops).
    candidate_text = parking_yaml(
        zone_yaml(), zone_yaml("kerb-west", dwell_s=5), zone_yaml("top-strip", polygon=TOP_ZONE)
    )

    with open(parked_car.path, "rb") as fh:
        r = client.post(
            URL,
            files={"file": ("clip.mp4", fh, "video/mp4")},
            data={"candidate_yaml": candidate_text},
            headers=integrator,
        )
    assert r.status_code == 202, r.text
    body = wait_done(client, r.json()["url"], integrator)
    assert body["status"] == "done", body["error"]
    assert body["progress"] == 1.0
    (clip,) = body["result"]["clips"]
    assert clip["origin"] == "upload" and body["result"]["current_version"] == 1

    # The configuration in force raises exactly what the replay command raises on the same clip.
    expected = cli_replay(parked_car.path, current_text, tmp_path)
    assert [key(e) for e in clip["current"]["events"]] == [key(e) for e in expected]
    started = [e for e in expected if e["event"] == "started"]
    assert len(started) == 1 and started[0]["zone"] == "no-parking"
    assert abs(started[0]["media_time"] - parked_car.expected_start(DWELL_S)) <= 2.0
    assert clip["current"]["events"][0]["classes"] == started[0]["classes"]

    # The candidate raises the same incident plus one in its new zone, 5 s earlier.
    expected_candidate = cli_replay(parked_car.path, candidate_text, tmp_path)
    assert [key(e) for e in clip["candidate"]["events"]] == [key(e) for e in expected_candidate]
    diff = clip["diff"]
    assert [(i["zone"], i["rule"]) for i in diff["only_candidate"]] == [("kerb-west", "illegal_parking")]
    assert abs(diff["only_candidate"][0]["start"] - parked_car.expected_start(5)) <= 2.0
    assert diff["only_current"] == []
    (pair,) = diff["both"]
    assert pair["current"]["incident_id"] == clip["current"]["incidents"][0]["incident_id"]
    assert pair["candidate"]["zone"] == pair["current"]["zone"] == "no-parking"

    # Both annotated videos are served, decode, and have a frame per analysed frame; ranges work.
    for which in ("candidate", "current"):
        video_url = clip[which]["video_url"]
        assert video_url == f"{URL}/{body['id']}/video/{which}/0"
        v = client.get(video_url, headers=integrator)
        assert v.status_code == 200 and v.headers["content-type"] == "video/mp4"
        assert decoded_frames(v.content, tmp_path / f"{which}.mp4") == clip[which]["frames"] > 40
        part = client.get(video_url, headers={**integrator, "Range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == v.content[:100]
    assert client.get(f"{URL}/{body['id']}/video/current/1", headers=integrator).status_code == 404


@pytest.mark.slow
def test_recent_evidence_with_the_configuration_in_force(
    client: TestClient,
    db: Database,
    evidence_store: EvidenceStore,
    tokens: dict[str, str],
    parked_car: ParkedCarScenario,
) -> None:
    integrator = auth(tokens["integrator"])
    ConfigStore(db).put(EDGE, parking_yaml(), author="test")
    data = parked_car.path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    with evidence_store.begin_upload(sha, "video/mp4", len(data)) as up:
        up.write(data)
        up.finish()
    now = datetime.now(UTC)
    with db.write_session() as session, session.begin():
        session.add(
            Incident(
                incident_id="inc-1",
                state="ended",
                site="test",
                edge_id=EDGE,
                camera=CAMERA,
                zone="no-parking",
                rule="illegal_parking",
                classes=["car"],
                objects=[],
                confidence=0.9,
                dwell_s=10.0,
                coverage=None,
                started_media_time=16.0,
                last_media_time=26.0,
                started_at=now,
                ended_at=now,
                first_event_seq=1,
                first_event_at=now,
                last_event_at=now,
                last_seq=2,
                event_count=2,
                config_version=None,
                created_at=now,
                updated_at=now,
                evidence=[{"kind": "snapshot", "sha256": "0" * 64}, {"kind": "clip", "sha256": sha}],
            )
        )

    r = client.post(URL, json={"use_recent_evidence": 3}, headers=integrator)
    assert r.status_code == 202, r.text
    body = wait_done(client, r.json()["url"], integrator)
    assert body["status"] == "done", body["error"]
    (clip,) = body["result"]["clips"]
    assert clip["origin"] == "evidence" and clip["sha256"] == sha and clip["incident_id"] == "inc-1"
    # Labelled for people: camera and time (no case links this incident here).
    assert clip["camera"] == CAMERA and clip["started_at"] == now.isoformat() and clip["case_id"] is None
    assert body["result"]["detector"] == {"candidate": True}
    # No candidate: it is the configuration in force, so everything matches.
    assert body["result"]["same_configuration"] is True
    assert clip["candidate"]["events"] == clip["current"]["events"] != []
    assert clip["diff"]["only_candidate"] == clip["diff"]["only_current"] == []
    assert len(clip["diff"]["both"]) == len(clip["current"]["incidents"]) == 1


def test_diff_matches_zone_rule_and_start_within_two_seconds() -> None:
    def inc(zone: str, start: float, rule: str = "illegal_parking") -> dict:
        return {"incident_id": f"{zone}-{start}", "zone": zone, "rule": rule, "start": start}

    candidate = [inc("a", 10.0), inc("a", 30.0), inc("b", 50.0), inc("c", 70.0, "occupied_space")]
    current = [inc("a", 11.5), inc("a", 33.0), inc("b", 49.0), inc("c", 70.0)]
    diff = diff_incidents(candidate, current)
    assert [(p["candidate"]["incident_id"], p["current"]["incident_id"]) for p in diff["both"]] == [
        ("a-10.0", "a-11.5"),
        ("b-50.0", "b-49.0"),
    ]
    assert [i["incident_id"] for i in diff["only_candidate"]] == ["a-30.0", "c-70.0"]
    assert [i["incident_id"] for i in diff["only_current"]] == ["a-33.0", "c-70.0"]
    # One-to-one, nearest first: two candidates near one current incident match it only once.
    diff = diff_incidents([inc("a", 10.0), inc("a", 11.0)], [inc("a", 11.2)])
    assert [p["candidate"]["start"] for p in diff["both"]] == [11.0] and len(diff["only_candidate"]) == 1


def test_invalid_candidate_is_refused_with_its_problems(
    client: TestClient, db: Database, tokens: dict
) -> None:
    ConfigStore(db).put(EDGE, parking_yaml(), author="test")
    bad = (
        parking_yaml().replace("dwell_s: 10", "dwell_s: -3").replace("analysis_fps: 2", "analysis_fps: lots")
    )
    r = client.post(
        URL, json={"use_recent_evidence": 1, "candidate_yaml": bad}, headers=auth(tokens["integrator"])
    )
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["error"] == "invalid_config"
    problems = detail["problems"]
    assert any(p.startswith("candidate.yaml:") and "analysis_fps" in p for p in problems), problems
    assert any("dwell_s" in p for p in problems), problems

    other_camera = parking_yaml().replace(f"id: {CAMERA}", "id: cam-other")
    r = client.post(
        URL,
        json={"use_recent_evidence": 1, "candidate_yaml": other_camera},
        headers=auth(tokens["integrator"]),
    )
    assert r.status_code == 422 and "no camera 'cam-lot'" in r.json()["detail"]["problems"][0]


def test_model_missing_on_the_hub_is_a_clear_422(client: TestClient, tokens: dict, tmp_path: Path) -> None:
    text = parking_yaml(model="/opt/gridwarden/models/custom.onnx")
    r = client.post(
        URL, json={"use_recent_evidence": 1, "candidate_yaml": text}, headers=auth(tokens["integrator"])
    )
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["error"] == "model_not_on_hub"
    assert "model file /opt/gridwarden/models/custom.onnx is not on the hub; copy it" in detail["message"]
    assert str(tmp_path / "models") in detail["message"]


def test_edge_model_path_is_found_in_the_hub_model_folder(
    client: TestClient, tokens: dict, parked_car: ParkedCarScenario, service: DryRunService
) -> None:
    """The edge's absolute model path does not exist here; the file of that name in model_dir is used."""
    assert service.model_dir is not None
    service.model_dir.mkdir(parents=True, exist_ok=True)
    (service.model_dir / YOLOX_NANO.name).symlink_to(YOLOX_NANO)  # read in place, not copied
    integrator = auth(tokens["integrator"])
    text = parking_yaml(model=f"/opt/gridwarden/models/{YOLOX_NANO.name}")
    with open(parked_car.path, "rb") as fh:
        r = client.post(
            URL, files={"file": ("c.mp4", fh, "video/mp4")}, data={"candidate_yaml": text}, headers=integrator
        )
    assert r.status_code == 202, r.text
    body = wait_done(client, r.json()["url"], integrator)
    assert body["status"] == "done", body["error"]
    (clip,) = body["result"]["clips"]
    assert clip["current"] is None and clip["diff"]["only_current"] == []
    assert [i["zone"] for i in clip["diff"]["only_candidate"]] == ["no-parking"]
    assert not list(service.job_dir(body["id"]).glob("upload*")), "the upload is deleted after the run"


def test_dry_runs_queue_and_run_one_at_a_time(
    client: TestClient, db: Database, tokens: dict, parked_car: ParkedCarScenario
) -> None:
    integrator = auth(tokens["integrator"])
    ConfigStore(db).put(EDGE, parking_yaml(), author="test")
    urls = []
    for _ in range(2):
        with open(parked_car.path, "rb") as fh:
            r = client.post(URL, files={"file": ("c.mp4", fh, "video/mp4")}, headers=integrator)
        assert r.status_code == 202 and r.json()["status"] == "queued"
        urls.append(r.json()["url"])
    first, second = (wait_done(client, url, integrator) for url in urls)
    assert first["status"] == second["status"] == "done"
    assert second["started_at"] >= first["finished_at"]
    events = [[key(e) for e in run["result"]["clips"][0]["current"]["events"]] for run in (first, second)]
    assert events[0] == events[1] != []


def test_bad_requests_and_permissions(
    client: TestClient, db: Database, tokens: dict, parked_car: ParkedCarScenario, tmp_path: Path
) -> None:
    integrator = auth(tokens["integrator"])
    # No configuration in force and no candidate.
    r = client.post(URL, json={"use_recent_evidence": 1}, headers=integrator)
    assert r.status_code == 404 and r.json()["detail"]["error"] == "no_config"
    ConfigStore(db).put(EDGE, parking_yaml(), author="test")
    # No evidence stored for the camera.
    r = client.post(URL, json={"use_recent_evidence": 1}, headers=integrator)
    assert r.status_code == 404 and r.json()["detail"]["error"] == "no_evidence"
    # A file that is not a video.
    r = client.post(URL, files={"file": ("x.mp4", b"not a video at all", "video/mp4")}, headers=integrator)
    assert r.status_code == 415 and r.json()["detail"]["error"] == "unreadable_clip"
    # Both or neither of upload and evidence.
    r = client.post(URL, data={"candidate_yaml": parking_yaml()}, headers=integrator)
    assert r.status_code == 422 and r.json()["detail"]["error"] == "bad_request"
    # Over the size limit (the service allows 20 MiB here).
    big = tmp_path / "big.mp4"
    big.write_bytes(parked_car.path.read_bytes()[:64] + b"\0" * (21 * 1024 * 1024))
    with open(big, "rb") as fh:
        r = client.post(URL, files={"file": ("big.mp4", fh, "video/mp4")}, headers=integrator)
    assert r.status_code == 413, r.text
    # Staff may not start a dry run; no token is 401; unknown dry run is 404.
    assert client.post(URL, json={"use_recent_evidence": 1}, headers=auth(tokens["staff"])).status_code == 403
    assert client.post(URL, json={"use_recent_evidence": 1}).status_code == 401
    assert client.get(f"{URL}/01jzzzzzzzzzzzzzzzzzzzzzzz", headers=integrator).status_code == 404
    assert client.get(f"{URL}/..%2F..%2Fetc", headers=integrator).status_code == 404
